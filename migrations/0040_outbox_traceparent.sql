-- 0040: the W3C traceparent of the request that wrote an event, carried to the consumers.
--
-- The API stores the traceparent of the span that wrote the row (`00-<trace id>-<span id>-<flags>`); the
-- connector moves the column into a `traceparent` Kafka record header (HeaderFrom$Value in
-- connectors/outbox.json), so the record value stays exactly the contract's EventEnvelope, and the consumer
-- loop continues the trace from that header. `trace_id` (0004) keeps the bare trace id for the audit trail.
-- Only the version-00 shape is accepted: it is the only one the application writes.
SET LOCAL ROLE hashinsight_owner;
ALTER TABLE event_outbox ADD COLUMN IF NOT EXISTS traceparent text
  CONSTRAINT event_outbox_traceparent_shape CHECK (traceparent ~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$');
RESET ROLE;
