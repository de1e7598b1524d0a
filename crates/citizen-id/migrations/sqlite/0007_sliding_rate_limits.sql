-- Rate limits on guessable secrets count in a sliding window: the hits of the window before the
-- current one are kept, and weighted by how much of it still falls inside the last window's
-- length. Counting in fixed windows alone let twice the limit through across a window's edge.
ALTER TABLE rate_limits ADD COLUMN previous_hits BIGINT NOT NULL DEFAULT 0;
