"""The SQL store: typed SQLAlchemy 2 models, engine factory, repositories (which never commit)."""
