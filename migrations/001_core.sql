-- Core tables: people, their chat identities and API tokens, conversations,
-- messages, the usage ledger and inbound-event deduplication (DESIGN section 3).

CREATE TABLE users (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    handle       text NOT NULL UNIQUE CHECK (handle <> ''),
    display_name text NOT NULL DEFAULT '',
    role         text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    time_zone    text NOT NULL DEFAULT 'Asia/Singapore',
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE identities (
    platform    text NOT NULL CHECK (platform IN ('slack', 'teams')),
    tenant      text NOT NULL,
    external_id text NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, tenant, external_id)
);
CREATE INDEX identities_user ON identities (user_id);

-- Only the SHA-256 of a token is kept; the token itself is shown once.
CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '',
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE conversations (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title           text NOT NULL,
    source          text NOT NULL CHECK (source IN ('api', 'slack', 'teams', 'console')),
    -- The chat thread this conversation belongs to; all four set or none.
    thread_platform text,
    thread_tenant   text,
    thread_channel  text,
    thread_id       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    last_message_at timestamptz,
    message_count   integer NOT NULL DEFAULT 0,
    archived_at     timestamptz,
    -- "Newest activity first" sorts on this; stored so keyset paging can use an index.
    activity_at     timestamptz GENERATED ALWAYS AS (coalesce(last_message_at, created_at)) STORED,
    CHECK ((thread_platform IS NULL) = (thread_tenant IS NULL)
       AND (thread_platform IS NULL) = (thread_channel IS NULL)
       AND (thread_platform IS NULL) = (thread_id IS NULL))
);
CREATE UNIQUE INDEX conversations_thread_key
    ON conversations (thread_platform, thread_tenant, thread_channel, thread_id)
    WHERE thread_platform IS NOT NULL;
CREATE INDEX conversations_owner_activity ON conversations (owner_id, activity_at DESC, id DESC);
CREATE INDEX conversations_owner_open_activity ON conversations (owner_id, activity_at DESC, id DESC)
    WHERE archived_at IS NULL;

CREATE TABLE messages (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- seq orders messages exactly, even two written in the same transaction.
    seq                 bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    conversation_id     uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    author_id           uuid REFERENCES users (id) ON DELETE SET NULL,
    role                text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content             text NOT NULL,
    platform_message_id text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    metadata            jsonb NOT NULL DEFAULT '{}',
    prompt_tokens       integer NOT NULL DEFAULT 0,
    completion_tokens   integer NOT NULL DEFAULT 0,
    total_tokens        integer NOT NULL DEFAULT 0,
    cost_micro_usd      bigint NOT NULL DEFAULT 0
);
CREATE INDEX messages_conversation_seq ON messages (conversation_id, seq);

-- The usage ledger. Deleting a conversation never erases spend.
CREATE TABLE usage_events (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id           uuid NOT NULL REFERENCES users (id),
    conversation_id   uuid REFERENCES conversations (id) ON DELETE SET NULL,
    message_id        uuid REFERENCES messages (id) ON DELETE SET NULL,
    source            text NOT NULL,
    model             text NOT NULL,
    prompt_tokens     integer NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens integer NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    cached_tokens     integer NOT NULL DEFAULT 0 CHECK (cached_tokens >= 0),
    cost_micro_usd    bigint NOT NULL DEFAULT 0 CHECK (cost_micro_usd >= 0),
    price_version     text NOT NULL DEFAULT '',
    estimated         boolean NOT NULL DEFAULT false,
    occurred_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_events_user_time ON usage_events (user_id, occurred_at);
CREATE INDEX usage_events_time ON usage_events (occurred_at);
CREATE INDEX usage_events_conversation ON usage_events (conversation_id);
CREATE INDEX usage_events_message ON usage_events (message_id);

-- A retried Slack event or Teams activity is processed once.
CREATE TABLE inbound_events (
    platform    text NOT NULL,
    event_key   text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, event_key)
);
