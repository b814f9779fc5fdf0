"""Pure domain logic: mining math, portfolio aggregation, miner status rules, forecasts. No I/O imports here."""
