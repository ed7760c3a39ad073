"""Durable memory, ingestion and indexes."""
