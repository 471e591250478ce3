-- Alliance database schema. One DuckDB file holds the service's ratings and the instrument registry.
-- Identifiers are pseudonymous codes (VARCHAR); nothing here holds names, birth dates, free text about
-- clients or the item wording of copyrighted instruments.
-- The schema version is recorded in alliance_meta; alliance/schema.py checks it when a file is opened.

CREATE TABLE alliance_meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

-- Instrument registry (loaded from data/instruments.toml and any user files). Sources sit with numbers.
CREATE TABLE instrument (
    code             VARCHAR PRIMARY KEY,           -- canonical spelling, e.g. 'PHQ-9'
    name             VARCHAR NOT NULL,
    construct        VARCHAR NOT NULL CHECK (construct IN ('outcome', 'alliance')),
    min_score        DOUBLE  NOT NULL,
    max_score        DOUBLE  NOT NULL,
    higher_is_better BOOLEAN NOT NULL,
    n_items          INTEGER NOT NULL DEFAULT 0 CHECK (n_items >= 0),
    item_min         DOUBLE,
    item_max         DOUBLE,
    source           VARCHAR NOT NULL,
    position         INTEGER NOT NULL DEFAULT 0,          -- order in the registry: earlier is preferred
    CHECK (min_score < max_score),
    CHECK (item_min IS NULL OR item_max IS NULL OR item_min < item_max)
);

-- Items are numbered, never worded. subscale is NULL where the instrument has none.
CREATE TABLE instrument_item (
    instrument VARCHAR NOT NULL REFERENCES instrument (code),
    item_no    INTEGER NOT NULL CHECK (item_no >= 1),
    label      VARCHAR NOT NULL,                    -- short domain label ('bond'), not the item text
    subscale   VARCHAR,
    PRIMARY KEY (instrument, item_no)
);

CREATE TABLE instrument_norm (
    instrument      VARCHAR NOT NULL REFERENCES instrument (code),
    population      VARCHAR NOT NULL CHECK (population IN ('adult', 'adolescent', 'child')),
    norm_set        VARCHAR NOT NULL DEFAULT 'default',
    cutoff          DOUBLE,
    clinical_side   VARCHAR CHECK (clinical_side IN ('below', 'at_or_above')),
    reliable_change DOUBLE CHECK (reliable_change IS NULL OR reliable_change > 0),
    clinical_mean   DOUBLE,
    clinical_sd     DOUBLE CHECK (clinical_sd IS NULL OR clinical_sd > 0),
    functional_mean DOUBLE,
    functional_sd   DOUBLE CHECK (functional_sd IS NULL OR functional_sd > 0),
    reliability     DOUBLE CHECK (reliability IS NULL OR (reliability > 0 AND reliability < 1)),
    source          VARCHAR NOT NULL,
    verified        BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (instrument, population, norm_set),
    CHECK (cutoff IS NULL OR clinical_side IS NOT NULL)
);

-- The service.
CREATE TABLE team (
    team_id       VARCHAR PRIMARY KEY,
    name          VARCHAR NOT NULL,
    supervisor_id VARCHAR                           -- a clinician code (may carry clients); NULL if unrecorded
);

CREATE TABLE clinician (
    clinician_id VARCHAR PRIMARY KEY,
    team_id      VARCHAR NOT NULL REFERENCES team (team_id)
);

CREATE TABLE client (
    client_id VARCHAR PRIMARY KEY                   -- pseudonymous code only
);

CREATE TABLE episode (
    episode_id   VARCHAR PRIMARY KEY,
    client_id    VARCHAR NOT NULL REFERENCES client (client_id),
    clinician_id VARCHAR NOT NULL REFERENCES clinician (clinician_id),
    population   VARCHAR NOT NULL DEFAULT 'adult' CHECK (population IN ('adult', 'adolescent', 'child')),
    start_date   DATE    NOT NULL,
    end_date     DATE,                              -- NULL: no discharge record (open, or closed by inactivity)
    end_reason   VARCHAR CHECK (end_reason IN ('planned', 'dropout', 'transferred', 'other')),
    CHECK (end_date IS NULL OR end_date >= start_date),
    CHECK (end_reason IS NULL OR end_date IS NOT NULL)
);

-- A session number is the position in the episode (1, 2, …). A session without a rating is a gap.
CREATE TABLE session (
    episode_id     VARCHAR NOT NULL REFERENCES episode (episode_id),
    session_number INTEGER NOT NULL CHECK (session_number BETWEEN 1 AND 500),
    session_date   DATE    NOT NULL,
    PRIMARY KEY (episode_id, session_number)
);

-- One instrument's total at one session. The range against the instrument is checked on import
-- (DuckDB CHECK constraints cannot look up another table); the bounds here catch gross errors.
CREATE TABLE rating (
    episode_id     VARCHAR NOT NULL,
    session_number INTEGER NOT NULL,
    instrument     VARCHAR NOT NULL REFERENCES instrument (code),
    score          DOUBLE  NOT NULL CHECK (score >= 0 AND score <= 1000),
    PRIMARY KEY (episode_id, session_number, instrument),
    FOREIGN KEY (episode_id, session_number) REFERENCES session (episode_id, session_number)
);

-- Optional item scores (numbers only).
CREATE TABLE rating_item (
    episode_id     VARCHAR NOT NULL,
    session_number INTEGER NOT NULL,
    instrument     VARCHAR NOT NULL,
    item_no        INTEGER NOT NULL CHECK (item_no >= 1),
    score          DOUBLE  NOT NULL CHECK (score >= 0 AND score <= 100),
    PRIMARY KEY (episode_id, session_number, instrument, item_no),
    FOREIGN KEY (episode_id, session_number, instrument) REFERENCES rating (episode_id, session_number, instrument)
);
