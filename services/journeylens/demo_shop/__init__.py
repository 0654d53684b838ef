"""The demo shop: a small real web shop with its third parties, served on loopback.

Four FastAPI services (shop, payment, CDN, SSO), each with a fault-injection admin endpoint
(``/_admin/faults``), so probes and RUM have something real to watch and break.
"""
