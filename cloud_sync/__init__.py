"""Wire contract between gateways and the collector, the uploader, and the collector service."""
