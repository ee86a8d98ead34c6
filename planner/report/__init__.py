"""The monthly report: its sources (ledger, CloudFront), how it is built and rendered."""
