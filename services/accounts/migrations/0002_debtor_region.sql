-- ISO 3166-2 subdivision, for jurisdictions whose contact rules differ by state (Brazil).
ALTER TABLE debtors ADD COLUMN region TEXT;
