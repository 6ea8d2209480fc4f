-- Runbook recall (issue 13): word statistics for search, typo tolerance on
-- titles and headings, and section embeddings for hybrid search.

-- pg_trgm ships with PostgreSQL's contrib (in Debian's postgresql package)
-- and is a trusted extension: the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- knowledge_state.generation changes whenever sections or embeddings do, so
-- a process that keeps section vectors in memory knows when to reload them.
CREATE TABLE knowledge_state (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    generation bigint NOT NULL DEFAULT 0
);
INSERT INTO knowledge_state DEFAULT VALUES;

-- What a section's embedding is computed from is hashed, so unchanged text
-- (an unchanged section of an edited file, a re-sync) reuses its vector.
-- The text is heading_path, a blank line, content; the hash is its UTF-8
-- SHA-256, which the index computes the same way in Go.
ALTER TABLE knowledge_sections ADD COLUMN embed_sha bytea;
UPDATE knowledge_sections SET embed_sha = sha256(convert_to(heading_path || E'\n\n' || content, 'UTF8'));
ALTER TABLE knowledge_sections ALTER COLUMN embed_sha SET NOT NULL,
    ADD CONSTRAINT knowledge_sections_embed_sha_len CHECK (length(embed_sha) = 32);
CREATE INDEX knowledge_sections_embed_sha ON knowledge_sections (embed_sha);

-- Section vectors by embedding space (model and dimensions, such as
-- "text-embedding-3-small/256") and text hash: little-endian float32 of unit
-- length, ranked in Go (PostgreSQL 15 from Debian has no pgvector).
CREATE TABLE knowledge_embeddings (
    space      text NOT NULL CHECK (space <> ''),
    sha        bytea NOT NULL CHECK (length(sha) = 32),
    vector     bytea NOT NULL CHECK (length(vector) > 0 AND length(vector) % 4 = 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (space, sha)
);

-- knowledge_terms counts, for every lexeme of the sections' tsv, the
-- sections that contain it and those whose title or heading path does.
-- Search reads it to know how rare each question word is (exactly, where
-- the planner's statistics only estimate), to leave out words no section
-- has, and, through the trigram index on heading words, to correct typos
-- ("certifcate" -> certificate). "C" collation: prefix lookups use the key.
CREATE TABLE knowledge_terms (
    lexeme   text COLLATE "C" PRIMARY KEY,
    sections integer NOT NULL,
    headings integer NOT NULL
);
CREATE INDEX knowledge_terms_heading_trgm ON knowledge_terms USING gin (lexeme gin_trgm_ops) WHERE headings > 0;
-- Lexemes no section has any more are deleted at once: this index is
-- empty between statements, and finding them costs nothing.
CREATE INDEX knowledge_terms_unused ON knowledge_terms (lexeme) WHERE sections <= 0;

-- The triggers keep knowledge_terms and the generation in step with every
-- statement that writes sections (Sync, bulk loads alike). Writers take one
-- transaction-scoped advisory lock ("kterms" in ASCII), so concurrent syncs
-- cannot deadlock on the shared lexeme rows.
CREATE FUNCTION knowledge_terms_add() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(x'6b7465726d73'::bigint);
    INSERT INTO knowledge_terms AS t (lexeme, sections, headings)
    SELECT u.lexeme, count(*), count(*) FILTER (WHERE u.weights && '{A,B}'::text[])
    FROM new_rows n, unnest(n.tsv) AS u
    GROUP BY u.lexeme
    ON CONFLICT (lexeme) DO UPDATE SET
        sections = t.sections + excluded.sections,
        headings = t.headings + excluded.headings;
    UPDATE knowledge_state SET generation = generation + 1;
    RETURN NULL;
END $$;

CREATE FUNCTION knowledge_terms_remove() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(x'6b7465726d73'::bigint);
    UPDATE knowledge_terms t SET sections = t.sections - g.sections, headings = t.headings - g.headings
    FROM (SELECT u.lexeme, count(*) AS sections, count(*) FILTER (WHERE u.weights && '{A,B}'::text[]) AS headings
          FROM old_rows o, unnest(o.tsv) AS u
          GROUP BY u.lexeme) g
    WHERE t.lexeme = g.lexeme;
    DELETE FROM knowledge_terms WHERE sections <= 0;
    UPDATE knowledge_state SET generation = generation + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER knowledge_terms_insert AFTER INSERT ON knowledge_sections
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION knowledge_terms_add();
CREATE TRIGGER knowledge_terms_delete AFTER DELETE ON knowledge_sections
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION knowledge_terms_remove();
CREATE TRIGGER knowledge_terms_update_old AFTER UPDATE ON knowledge_sections
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION knowledge_terms_remove();
CREATE TRIGGER knowledge_terms_update_new AFTER UPDATE ON knowledge_sections
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION knowledge_terms_add();

CREATE FUNCTION knowledge_bump_generation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE knowledge_state SET generation = generation + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER knowledge_embeddings_changed AFTER INSERT OR UPDATE OR DELETE ON knowledge_embeddings
    FOR EACH STATEMENT EXECUTE FUNCTION knowledge_bump_generation();

INSERT INTO knowledge_terms (lexeme, sections, headings)
SELECT u.lexeme, count(*), count(*) FILTER (WHERE u.weights && '{A,B}'::text[])
FROM knowledge_sections s, unnest(s.tsv) AS u
GROUP BY u.lexeme;
