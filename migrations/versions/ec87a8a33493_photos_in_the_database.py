"""photos in the database: evidence and item photos move from instance/photos into `photo`

Revision ID: ec87a8a33493
Revises: 2cc4060404fd
Create Date: 2026-11-27 12:59:21.815474

Every file named by scoring_proposal.photo or store_item.photo (instance/photos/<village>/<name>)
is read into a `photo` row and the record points at it; a file that is missing is reported and
the record loses its photo (it could not be shown before either). The files are left on disk:
delete instance/photos/ once the upgrade is checked. A downgrade writes the rows back to files.
"""

import hashlib
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "ec87a8a33493"
down_revision = "2cc4060404fd"
branch_labels = None
depends_on = None

TABLES = ("scoring_proposal", "store_item")


def _photo_folder() -> Path:
    from flask import current_app

    return Path(current_app.instance_path) / "photos"


def _photo_table():
    return sa.table(
        "photo",
        sa.column("id", sa.Integer),
        sa.column("village_id", sa.Integer),
        sa.column("content_type", sa.String),
        sa.column("sha256", sa.String),
        sa.column("size", sa.Integer),
        sa.column("data", sa.LargeBinary),
        sa.column("created_at", sa.DateTime),
    )


def _move_files_in() -> None:
    conn = op.get_bind()
    folder = _photo_folder()
    photo = _photo_table()
    now = datetime.now(UTC).replace(tzinfo=None)
    for table in TABLES:
        t = sa.table(
            table,
            sa.column("id", sa.Integer),
            sa.column("village_id", sa.Integer),
            sa.column("photo", sa.String),
            sa.column("photo_id", sa.Integer),
        )
        rows = conn.execute(
            sa.select(t.c.id, t.c.village_id, t.c.photo).where(t.c.photo.is_not(None))
        ).all()
        for row_id, village_id, name in rows:
            path = folder / str(village_id) / name
            if "/" in name or not path.is_file():
                print(f"photo {path} of {table} {row_id} is missing: dropped", file=sys.stderr)
                continue
            data = path.read_bytes()
            photo_id = conn.execute(
                sa.insert(photo)
                .values(
                    village_id=village_id,
                    content_type="image/jpeg",  # photos.process stored only JPEGs
                    sha256=hashlib.sha256(data).hexdigest(),
                    size=len(data),
                    data=data,
                    created_at=now,
                )
                .returning(photo.c.id)
            ).scalar_one()
            conn.execute(sa.update(t).where(t.c.id == row_id).values(photo_id=photo_id))


def _write_files_out() -> None:
    conn = op.get_bind()
    folder = _photo_folder()
    photo = _photo_table()
    for table in TABLES:
        t = sa.table(
            table,
            sa.column("id", sa.Integer),
            sa.column("photo", sa.String),
            sa.column("photo_id", sa.Integer),
        )
        rows = conn.execute(
            sa.select(t.c.id, photo.c.village_id, photo.c.data).join(
                photo, photo.c.id == t.c.photo_id
            )
        ).all()
        for row_id, village_id, data in rows:
            name = secrets.token_hex(16) + ".jpg"
            (folder / str(village_id)).mkdir(parents=True, exist_ok=True)
            (folder / str(village_id) / name).write_bytes(data)
            conn.execute(sa.update(t).where(t.c.id == row_id).values(photo=name))


def upgrade():
    op.create_table(
        "photo",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["village_id"], ["village.id"], name=op.f("fk_photo_village_id_village")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_photo")),
    )
    with op.batch_alter_table("photo", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_photo_village_id"), ["village_id"], unique=False)

    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("photo_id", sa.Integer(), nullable=True))
            batch_op.create_foreign_key(
                batch_op.f(f"fk_{table}_photo_id_photo"), "photo", ["photo_id"], ["id"]
            )

    _move_files_in()

    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("photo")


def downgrade():
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("photo", sa.VARCHAR(length=80), nullable=True))

    _write_files_out()

    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f"fk_{table}_photo_id_photo"), type_="foreignkey")
            batch_op.drop_column("photo_id")

    with op.batch_alter_table("photo", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_photo_village_id"))
    op.drop_table("photo")
