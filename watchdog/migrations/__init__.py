"""Alembic migrations; shipped inside the wheel so an installed daemon can migrate."""
