"""What the Aurora cluster holds: the Vela schema with zero rows, in a local PostgreSQL database.

Reached like the real cluster (endpoint from the RDS API, credentials from the Secrets Manager secret),
with the environment's host-address override routing the connection to loopback.
"""

from __future__ import annotations

import psycopg

from infra.sandbox import pg
from infra.sandbox.config import SandboxConfig

# A plausible slice of the relational schema Vela provisioned Aurora for and never filled.
VELA_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id uuid PRIMARY KEY,
    email text NOT NULL UNIQUE,
    display_name text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS decks (
    id uuid PRIMARY KEY,
    account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    title text NOT NULL,
    language text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS cards (
    id uuid PRIMARY KEY,
    deck_id uuid NOT NULL REFERENCES decks (id) ON DELETE CASCADE,
    front text NOT NULL,
    back text NOT NULL,
    audio_key text
);
CREATE TABLE IF NOT EXISTS reviews (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_id uuid NOT NULL REFERENCES cards (id) ON DELETE CASCADE,
    grade smallint NOT NULL CHECK (grade BETWEEN 0 AND 5),
    reviewed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS tts_audio (
    s3_key text PRIMARY KEY,
    voice text NOT NULL,
    text_sha256 text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- What the DSQL translation has to change (issue #15): a serial key, plain and descending indexes, an
-- enum, a PL/pgSQL trigger keeping updated_at, and a view it can keep as is.
DO $$ BEGIN
    CREATE TYPE study_mode AS ENUM ('learn', 'review', 'cram');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
CREATE TABLE IF NOT EXISTS study_sessions (
    id serial PRIMARY KEY,
    account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    mode study_mode NOT NULL DEFAULT 'review',
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS cards_deck_id ON cards (deck_id);
CREATE INDEX IF NOT EXISTS reviews_card_recent ON reviews (card_id, reviewed_at DESC);
CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER study_sessions_touch BEFORE UPDATE ON study_sessions
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE OR REPLACE VIEW deck_sizes AS
    SELECT d.id AS deck_id, d.account_id, count(c.id) AS cards
    FROM decks d LEFT JOIN cards c ON c.deck_id = d.id GROUP BY d.id, d.account_id;
"""

TABLES = ["accounts", "cards", "decks", "reviews", "study_sessions", "tts_audio"]


def ensure(config: SandboxConfig) -> None:
    """The role the secret names, its database and the empty schema; rows already there are left alone."""
    pg.ensure_role(config, config.aurora_user)
    pg.ensure_database(config, config.aurora_database, config.aurora_user)
    # Created as the owner role, as Vela's own migrations would have done.
    with psycopg.connect(**config.pg_params(config.aurora_database, user=config.aurora_user)) as conn:
        conn.execute(VELA_SCHEMA)


def drop(config: SandboxConfig) -> None:
    pg.drop_database(config, config.aurora_database)
