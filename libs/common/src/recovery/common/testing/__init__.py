"""Test fixtures shared by every service: real NATS, real databases, real tokens."""
