-- 0008: a heartbeat table for the connector.
--
-- WAL is server-wide: while other databases write and this one is quiet, the replication slot can only
-- confirm WAL it was sent changes for. Debezium's heartbeat.action.query inserts a row here every heartbeat,
-- the publication streams that insert, the connector's first transform drops the record, and the slot's
-- confirmed position moves forward. The same statement deletes beats older than an hour; the publication
-- publishes inserts only, so the deletes are never streamed.
SET LOCAL ROLE hashinsight_owner;
CREATE TABLE debezium_heartbeat (
  id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  beat_at timestamptz NOT NULL DEFAULT now()
);
RESET ROLE;

GRANT SELECT, INSERT, DELETE ON debezium_heartbeat TO debezium;
ALTER PUBLICATION hashinsight_outbox SET TABLE public.event_outbox, public.debezium_heartbeat;
