"""What every feature shares: database, errors, dates, clock, HTTP plumbing."""
