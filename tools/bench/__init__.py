"""`make bench`: open-loop write-to-visible latency, stage by stage, with CPU per write per process."""
