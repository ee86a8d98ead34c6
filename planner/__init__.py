"""invalidation-planner: deploy a static site to S3 and invalidate CloudFront as cheaply as possible."""

__version__ = "0.1.0"
