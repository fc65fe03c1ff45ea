"""Fixture generator for lockstep-replay: frame builders, pcap writer and the cases."""
