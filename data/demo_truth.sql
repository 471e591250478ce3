-- Ground truth planted by the demo generator, for measuring detectors. Created only in demo databases
-- (alliance demo), never by the production schema or an import; no page ever reads it.
CREATE TABLE planted_events (
    event_id       INTEGER PRIMARY KEY,
    event_type     VARCHAR NOT NULL CHECK (event_type IN (
                       'sudden_gain', 'sudden_loss', 'rupture_repaired', 'rupture_unrepaired',
                       'deterioration', 'clinician_better', 'clinician_worse', 'clinician_low_alliance')),
    clinician_id   VARCHAR,
    episode_id     VARCHAR,
    session_number INTEGER,                         -- the session the event happens at (pregain / rupture)
    instrument     VARCHAR,
    magnitude      DOUBLE,
    detail         VARCHAR
);
