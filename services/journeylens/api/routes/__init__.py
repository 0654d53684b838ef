"""One module per resource: journeys, incidents, alerts, anomalies; and the dashboard."""
