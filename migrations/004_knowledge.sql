-- Runbook knowledge (issue 6): runbook documents split into sections by
-- heading, full-text searchable, and the questions they could not answer.
--
-- One document per file of the synced directory, keyed by its path relative
-- to that directory. content_hash (SHA-256 of the file) lets a re-sync skip
-- unchanged files.
CREATE TABLE knowledge_documents (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    path         text NOT NULL UNIQUE CHECK (path <> ''),
    title        text NOT NULL,
    content_hash bytea NOT NULL CHECK (length(content_hash) = 32),
    size_bytes   integer NOT NULL CHECK (size_bytes >= 0),
    indexed_at   timestamptz NOT NULL
);

-- A section is the text under one heading. tsv combines the english config
-- (stemming: "restarting" finds "restart") with the simple config (exact
-- tokens: host names, error codes, CLI flags) and weights the section title
-- (A) above the heading path (B) and the body (C english, D simple).
CREATE TABLE knowledge_sections (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id  bigint NOT NULL REFERENCES knowledge_documents (id) ON DELETE CASCADE,
    ord          integer NOT NULL CHECK (ord >= 0),
    title        text NOT NULL,
    heading_path text NOT NULL,
    content      text NOT NULL,
    tsv          tsvector NOT NULL GENERATED ALWAYS AS (
                     setweight(to_tsvector('english', title), 'A')
                  || setweight(to_tsvector('simple', title), 'A')
                  || setweight(to_tsvector('english', heading_path), 'B')
                  || setweight(to_tsvector('english', content), 'C')
                  || setweight(to_tsvector('simple', content), 'D')
                 ) STORED,
    UNIQUE (document_id, ord)
);
-- Keep tsv in the row (compressed) rather than in the TOAST table: ranking
-- reads it for every candidate, and a TOAST fetch per read costs more than
-- the ranking itself (measured: 20 ms -> 13 ms for 950 candidates).
ALTER TABLE knowledge_sections ALTER COLUMN tsv SET STORAGE MAIN;
CREATE INDEX knowledge_sections_tsv ON knowledge_sections USING gin (tsv);

-- Questions no section answered above the threshold. The engine redacts them
-- before they get here; normalized groups similar wordings in the report.
CREATE TABLE knowledge_gaps (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    question        text NOT NULL,
    normalized      text NOT NULL,
    user_id         uuid REFERENCES users (id) ON DELETE SET NULL,
    conversation_id uuid REFERENCES conversations (id) ON DELETE SET NULL,
    asked_at        timestamptz NOT NULL
);
CREATE INDEX knowledge_gaps_asked ON knowledge_gaps (asked_at);
