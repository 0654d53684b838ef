"""Simulated traffic of the demo shop: real-user sessions, probe runs and injectable faults.

Pure Python on plain data (no Kafka, HTTP or storage imports): the same model feeds the unit
tests, the detection benchmark and (through the collector's endpoints) the live demo.
"""
