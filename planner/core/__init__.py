"""The pure core: URLs, the cost model, the minimizer, pacing, origins, header rules. No boto3, no click, no I/O."""
