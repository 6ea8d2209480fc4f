package knowledge

// Exported for the benchmarks, which bulk-load sections and their vectors
// as Sync would store them.
var (
	EmbedText    = embedText
	EncodeVector = encodeVector
)
