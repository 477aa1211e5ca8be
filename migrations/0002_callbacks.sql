-- A job may name an http(s) URL to notify when it reaches a final state; the store then queues
-- a `webhook` job in the same transaction as the final state change.
ALTER TABLE ferry_jobs ADD COLUMN callback_url TEXT;
