# (filled in by the data plane work)
