-- inbound_events only has to outlive a platform's redeliveries (minutes);
-- an hourly job deletes older rows. BRIN suits a column that only grows
-- with the table's order and costs next to nothing to maintain.
CREATE INDEX inbound_events_received ON inbound_events USING brin (received_at);
