"""pydrant: a vector database server speaking Qdrant's REST API, built on an event-sourced engine."""

__version__ = "0.1.0"
# The Qdrant API version whose REST contract pydrant implements. `GET /` reports it as
# `version` so that qdrant-client's compatibility check passes.
QDRANT_API_VERSION = "1.15.5"
