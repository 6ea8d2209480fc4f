package usage

import (
	"errors"
	"fmt"
	"time"
)

// MaxDays bounds a summary's range: a year and a leap day.
const MaxDays = 366

// Range is a run of whole calendar days, First to Last inclusive, as they
// fall in Loc. Its instants are the local midnights, computed with time.Date
// in Loc, so days of 23 or 25 hours across a DST change come out right, and
// because every IANA offset is a multiple of 15 minutes each midnight is a
// rollup bucket edge.
type Range struct {
	Loc   *time.Location
	First Date
	Last  Date
}

// Date is a calendar day with no zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf is the calendar day of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// ParseDate reads YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("date %q is not YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// String renders YYYY-MM-DD.
func (d Date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day)
}

// AddDays is the date n days later (earlier for negative n).
func (d Date) AddDays(n int) Date {
	return DateOf(time.Date(d.Year, d.Month, d.Day+n, 0, 0, 0, 0, time.UTC))
}

// Midnight is the instant the day begins in loc.
func (d Date) Midnight(loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// daysBetween counts the days from a to b (b - a).
func daysBetween(a, b Date) int {
	ta := time.Date(a.Year, a.Month, a.Day, 0, 0, 0, 0, time.UTC)
	tb := time.Date(b.Year, b.Month, b.Day, 0, 0, 0, 0, time.UTC)
	return int(tb.Sub(ta).Hours() / 24)
}

// Errors about ranges; the HTTP layer names the field.
var (
	ErrRangeOrder = errors.New("end is before start")
	ErrRangeLong  = fmt.Errorf("range is longer than %d days", MaxDays)
)

// NewRange checks and builds the range first..last in loc.
func NewRange(loc *time.Location, first, last Date) (Range, error) {
	n := daysBetween(first, last)
	if n < 0 {
		return Range{}, ErrRangeOrder
	}
	if n+1 > MaxDays {
		return Range{}, ErrRangeLong
	}
	return Range{Loc: loc, First: first, Last: last}, nil
}

// LastDays is the n days ending today (as of now) in loc.
func LastDays(now time.Time, loc *time.Location, n int) (Range, error) {
	if n < 1 || n > MaxDays {
		return Range{}, fmt.Errorf("days must be 1 to %d", MaxDays)
	}
	today := DateOf(now.In(loc))
	return NewRange(loc, today.AddDays(-(n - 1)), today)
}

// Len is the number of days in the range.
func (r Range) Len() int { return daysBetween(r.First, r.Last) + 1 }

// Start is the first instant of the range.
func (r Range) Start() time.Time { return r.First.Midnight(r.Loc) }

// End is the first instant after the range.
func (r Range) End() time.Time { return r.Last.AddDays(1).Midnight(r.Loc) }

// Dates lists every day of the range in order.
func (r Range) Dates() []Date {
	out := make([]Date, r.Len())
	for i := range out {
		out[i] = r.First.AddDays(i)
	}
	return out
}

// Edges are the local midnights that bound the days: Len()+1 instants,
// edges[i] to edges[i+1] being day i.
func (r Range) Edges() []time.Time {
	ds := r.Dates()
	out := make([]time.Time, 0, len(ds)+1)
	for _, d := range ds {
		out = append(out, d.Midnight(r.Loc))
	}
	return append(out, r.End())
}

// MonthOf is the calendar month containing t in loc, as a range.
func MonthOf(t time.Time, loc *time.Location) Range {
	y, m, _ := t.In(loc).Date()
	first := Date{y, m, 1}
	last := DateOf(time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC))
	return Range{Loc: loc, First: first, Last: last}
}
