"""Helpers of check-fixtures.py: capture files, frame decoding, expectation checks."""
