-- How many local days a statement takes in, from the day it goes (the strategy's
-- statement_window_days; 1: the same day). Rows planned before the setting existed keep a day.
ALTER TABLE reminders ADD COLUMN statement_days SMALLINT NOT NULL DEFAULT 1;
