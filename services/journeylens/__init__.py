"""JourneyLens: end-to-end digital-experience monitoring."""

__version__ = "0.1.0"
