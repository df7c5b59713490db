"""Running the flows in production: the Prefect server and (issue 6) deployments."""
