"""Sources: declarative specs that map raw datasets onto one taxonomy, with provenance."""
from .ingest import SourceRows
from .read import ingest
from .readers import read_columns
from .spec import SourceSpec, load_spec, parse_spec

__all__ = ["SourceRows", "SourceSpec", "ingest", "load_spec", "parse_spec", "read_columns"]
