"""The Chinook sample database's schema (the public 11-table digital-media store: artists, albums, tracks,
playlists, employees with a reporting line, customers, invoices), filled with deterministic generated rows
of a similar shape. The drills load it as a team would load theirs: from a SQL dump.

    python -m tests.fixtures_data.chinook --out tests/fixtures_data/chinook.sql   # regenerate the shipped dump

tests/test_foreign_seeds.py checks the shipped dump is what this module makes."""

from __future__ import annotations

import argparse
import random
import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE [Artist] ([ArtistId] INTEGER NOT NULL, [Name] NVARCHAR(120), CONSTRAINT [PK_Artist] PRIMARY KEY ([ArtistId]));
CREATE TABLE [Album] ([AlbumId] INTEGER NOT NULL, [Title] NVARCHAR(160) NOT NULL, [ArtistId] INTEGER NOT NULL,
  CONSTRAINT [PK_Album] PRIMARY KEY ([AlbumId]),
  FOREIGN KEY ([ArtistId]) REFERENCES [Artist] ([ArtistId]) ON DELETE NO ACTION ON UPDATE NO ACTION);
CREATE TABLE [Employee] ([EmployeeId] INTEGER NOT NULL, [LastName] NVARCHAR(20) NOT NULL,
  [FirstName] NVARCHAR(20) NOT NULL, [Title] NVARCHAR(30), [ReportsTo] INTEGER, [BirthDate] DATETIME,
  [HireDate] DATETIME, [City] NVARCHAR(40), [Country] NVARCHAR(40), [Email] NVARCHAR(60),
  CONSTRAINT [PK_Employee] PRIMARY KEY ([EmployeeId]),
  FOREIGN KEY ([ReportsTo]) REFERENCES [Employee] ([EmployeeId]) ON DELETE NO ACTION ON UPDATE NO ACTION);
CREATE TABLE [Customer] ([CustomerId] INTEGER NOT NULL, [FirstName] NVARCHAR(40) NOT NULL,
  [LastName] NVARCHAR(20) NOT NULL, [Company] NVARCHAR(80), [City] NVARCHAR(40), [Country] NVARCHAR(40),
  [Email] NVARCHAR(60) NOT NULL, [SupportRepId] INTEGER, CONSTRAINT [PK_Customer] PRIMARY KEY ([CustomerId]),
  FOREIGN KEY ([SupportRepId]) REFERENCES [Employee] ([EmployeeId]) ON DELETE SET NULL ON UPDATE NO ACTION);
CREATE TABLE [Genre] ([GenreId] INTEGER NOT NULL, [Name] NVARCHAR(120), CONSTRAINT [PK_Genre] PRIMARY KEY ([GenreId]));
CREATE TABLE [MediaType] ([MediaTypeId] INTEGER NOT NULL, [Name] NVARCHAR(120),
  CONSTRAINT [PK_MediaType] PRIMARY KEY ([MediaTypeId]));
CREATE TABLE [Track] ([TrackId] INTEGER NOT NULL, [Name] NVARCHAR(200) NOT NULL, [AlbumId] INTEGER,
  [MediaTypeId] INTEGER NOT NULL, [GenreId] INTEGER, [Composer] NVARCHAR(220), [Milliseconds] INTEGER NOT NULL,
  [Bytes] INTEGER, [UnitPrice] NUMERIC(10,2) NOT NULL, CONSTRAINT [PK_Track] PRIMARY KEY ([TrackId]),
  FOREIGN KEY ([AlbumId]) REFERENCES [Album] ([AlbumId]) ON DELETE NO ACTION ON UPDATE NO ACTION,
  FOREIGN KEY ([GenreId]) REFERENCES [Genre] ([GenreId]) ON DELETE NO ACTION ON UPDATE NO ACTION,
  FOREIGN KEY ([MediaTypeId]) REFERENCES [MediaType] ([MediaTypeId]) ON DELETE NO ACTION ON UPDATE NO ACTION);
CREATE TABLE [Invoice] ([InvoiceId] INTEGER NOT NULL, [CustomerId] INTEGER NOT NULL, [InvoiceDate] DATETIME NOT NULL,
  [BillingCity] NVARCHAR(40), [BillingCountry] NVARCHAR(40), [Total] NUMERIC(10,2) NOT NULL,
  CONSTRAINT [PK_Invoice] PRIMARY KEY ([InvoiceId]),
  FOREIGN KEY ([CustomerId]) REFERENCES [Customer] ([CustomerId]) ON DELETE NO ACTION ON UPDATE NO ACTION);
CREATE TABLE [InvoiceLine] ([InvoiceLineId] INTEGER NOT NULL, [InvoiceId] INTEGER NOT NULL, [TrackId] INTEGER NOT NULL,
  [UnitPrice] NUMERIC(10,2) NOT NULL, [Quantity] INTEGER NOT NULL, CONSTRAINT [PK_InvoiceLine] PRIMARY KEY ([InvoiceLineId]),
  FOREIGN KEY ([InvoiceId]) REFERENCES [Invoice] ([InvoiceId]) ON DELETE CASCADE ON UPDATE NO ACTION,
  FOREIGN KEY ([TrackId]) REFERENCES [Track] ([TrackId]) ON DELETE NO ACTION ON UPDATE NO ACTION);
CREATE TABLE [Playlist] ([PlaylistId] INTEGER NOT NULL, [Name] NVARCHAR(120), CONSTRAINT [PK_Playlist] PRIMARY KEY ([PlaylistId]));
CREATE TABLE [PlaylistTrack] ([PlaylistId] INTEGER NOT NULL, [TrackId] INTEGER NOT NULL,
  CONSTRAINT [PK_PlaylistTrack] PRIMARY KEY ([PlaylistId], [TrackId]),
  FOREIGN KEY ([PlaylistId]) REFERENCES [Playlist] ([PlaylistId]) ON DELETE NO ACTION ON UPDATE NO ACTION,
  FOREIGN KEY ([TrackId]) REFERENCES [Track] ([TrackId]) ON DELETE NO ACTION ON UPDATE NO ACTION);
CREATE INDEX [IFK_AlbumArtistId] ON [Album] ([ArtistId]);
CREATE INDEX [IFK_CustomerSupportRepId] ON [Customer] ([SupportRepId]);
CREATE INDEX [IFK_EmployeeReportsTo] ON [Employee] ([ReportsTo]);
CREATE INDEX [IFK_InvoiceCustomerId] ON [Invoice] ([CustomerId]);
CREATE INDEX [IFK_InvoiceLineInvoiceId] ON [InvoiceLine] ([InvoiceId]);
CREATE INDEX [IFK_InvoiceLineTrackId] ON [InvoiceLine] ([TrackId]);
CREATE INDEX [IFK_PlaylistTrackTrackId] ON [PlaylistTrack] ([TrackId]);
CREATE INDEX [IFK_TrackAlbumId] ON [Track] ([AlbumId]);
CREATE INDEX [IFK_TrackGenreId] ON [Track] ([GenreId]);
CREATE INDEX [IFK_TrackMediaTypeId] ON [Track] ([MediaTypeId]);
"""
WORDS = ("blue", "night", "river", "electric", "love", "road", "fire", "dream", "stone", "city", "heart", "rain")
GENRES = ("Rock", "Jazz", "Metal", "Alternative", "Blues", "Latin", "Reggae", "Pop", "Classical", "Soundtrack")
MEDIA = ("MPEG audio file", "Protected AAC audio file", "Protected MPEG-4 video file", "Purchased AAC audio file")
COUNTRIES = ("USA", "Canada", "Brazil", "France", "Germany", "India", "Japan", "Portugal")


def _title(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS).capitalize() for _ in range(words))


def _people(db: sqlite3.Connection, rng: random.Random) -> None:
    for i in range(1, 9):
        db.execute("INSERT INTO Employee VALUES (?,?,?,?,?,?,?,?,?,?)",
                   (i, f"Last{i}", f"First{i}", "Sales Support Agent" if i > 2 else "Manager", None if i == 1 else
                    (1 if i <= 3 else rng.randint(2, 3)), f"19{60 + i}-0{1 + i % 9}-1{i % 9} 00:00:00",
                    f"20{10 + i % 9}-04-0{1 + i % 9} 00:00:00", "Calgary", "Canada", f"e{i}@chinookcorp.com"))  # fmt: skip
    for i in range(1, 60):
        db.execute("INSERT INTO Customer VALUES (?,?,?,?,?,?,?,?)",
                   (i, f"Name{i}", f"Family{i}", None if i % 3 else f"Company {i}", f"City {i % 17}",
                    rng.choice(COUNTRIES), f"customer{i}@example.com", rng.choice((3, 4, 5, None))))  # fmt: skip


def _catalogue(db: sqlite3.Connection, rng: random.Random) -> None:
    db.executemany("INSERT INTO Genre VALUES (?,?)", list(enumerate(GENRES, 1)))
    db.executemany("INSERT INTO MediaType VALUES (?,?)", list(enumerate(MEDIA, 1)))
    db.executemany("INSERT INTO Artist VALUES (?,?)", [(i, _title(rng, 2)) for i in range(1, 61)])
    db.executemany("INSERT INTO Album VALUES (?,?,?)", [(i, _title(rng, 3), rng.randint(1, 60)) for i in range(1, 91)])
    tracks = [(i, _title(rng, rng.randint(1, 4)), rng.randint(1, 90), rng.randint(1, len(MEDIA)),
               rng.choice((*range(1, len(GENRES) + 1), None)), None if i % 4 == 0 else f"Composer {i % 40}",
               rng.randint(60_000, 600_000), rng.randint(1_000_000, 12_000_000), 0.99 if i % 10 else 1.99)
              for i in range(1, 701)]  # fmt: skip
    db.executemany("INSERT INTO Track VALUES (?,?,?,?,?,?,?,?,?)", tracks)
    db.executemany("INSERT INTO Playlist VALUES (?,?)", [(i, _title(rng, 2)) for i in range(1, 19)])
    pairs = sorted({(rng.randint(1, 18), rng.randint(1, 700)) for _ in range(1600)})
    db.executemany("INSERT INTO PlaylistTrack VALUES (?,?)", pairs)


def _sales(db: sqlite3.Connection, rng: random.Random) -> None:
    line = 0
    for i in range(1, 201):
        db.execute("INSERT INTO Invoice VALUES (?,?,?,?,?,?)",
                   (i, rng.randint(1, 59), f"2025-{1 + i % 12:02d}-{1 + i % 28:02d} 00:00:00", f"City {i % 17}",
                    rng.choice(COUNTRIES), 0))  # fmt: skip
        total = 0.0
        for _ in range(rng.randint(1, 9)):
            line += 1
            price = rng.choice((0.99, 1.99))
            db.execute("INSERT INTO InvoiceLine VALUES (?,?,?,?,?)", (line, i, rng.randint(1, 700), price, 1))
            total += price
        db.execute("UPDATE Invoice SET Total = ? WHERE InvoiceId = ?", (round(total, 2), i))


def build(db: sqlite3.Connection) -> None:
    """Create and fill the schema (usable as --drill-seed=tests.fixtures_data.chinook:build)."""
    rng = random.Random(20261201)
    db.executescript(SCHEMA)
    _people(db, rng)
    _catalogue(db, rng)
    _sales(db, rng)
    db.commit()


def dump_text() -> str:
    db = sqlite3.connect(":memory:")
    try:
        build(db)
        return "\n".join(db.iterdump()) + "\n"
    finally:
        db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.write_text(dump_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
