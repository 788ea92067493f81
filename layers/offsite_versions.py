"""Layer 4 read through every version of a versioned (S3 Object Lock) offsite bucket: after an attack, the
newest version of a sealed copy may be an attacker's overwrite and its latest entry a delete marker. This
source skips delete markers and offers each backup's versions newest first; a version that does not
authenticate under our key (layers.offsite's AES-256-GCM stream: an overwrite cannot) is refused with its
version id, and the recovery falls back to the older, locked version."""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from layers.backup import CatalogEntry, NoUsableBackup
from layers.offsite import (
    BACKUPS,
    CATALOG,
    Keyring,
    OffsiteSource,
    entry_key,
    entry_or_refusal,
    object_key,
)
from layers.recovery import Fetched, Offer, Refusal, Refused
from layers.store import STORE_ERRORS, ObjectVersion, S3Store


@dataclass(frozen=True)
class Census:
    """What a versioned offsite bucket holds under layer 4's prefixes."""

    keys: int  # object names with at least one version that is not a delete marker
    versions: int
    delete_markers: int
    hidden: int  # names whose latest entry is a delete marker (a plain listing shows them as gone)

    def describe(self) -> dict[str, int]:
        return {"keys": self.keys, "versions": self.versions, "delete_markers": self.delete_markers,
                "hidden_by_delete_marker": self.hidden}  # fmt: skip


def layer4_versions(store: S3Store) -> list[ObjectVersion]:
    return store.versions(CATALOG) + store.versions(BACKUPS)


def census(versions: list[ObjectVersion]) -> Census:
    kept = {v.key for v in versions if not v.delete_marker}
    hidden = {v.key for v in versions if v.delete_marker and v.latest}
    markers = sum(1 for v in versions if v.delete_marker)
    return Census(len(kept), len(versions) - markers, markers, len(hidden & kept))


def _by_key(versions: list[ObjectVersion]) -> dict[str, list[str]]:
    """Version ids per key, newest first, delete markers left out."""
    found: dict[str, list[str]] = defaultdict(list)
    for v in versions:
        if not v.delete_marker:
            found[v.key].append(v.version_id)
    return found


@dataclass(frozen=True)
class VersionedOffsiteSource:
    """The offsite bucket read version by version (ListObjectVersions, GetObject with VersionId): needs a
    reader allowed s3:ListBucketVersions and s3:GetObjectVersion."""

    store: S3Store
    keys: Keyring
    layer: int = 4
    empty: str = "no offsite copy survived the attack (no version of any sealed copy is left)"

    @property
    def url(self) -> str:
        return self.store.url

    def offers(self) -> tuple[list[Offer], list[Refusal]]:
        try:
            versions = _by_key(layer4_versions(self.store))
        except STORE_ERRORS as exc:
            raise NoUsableBackup(
                f"{self.empty}: could not list the versions of {self.url} ({type(exc).__name__}: {str(exc)[:200]})"
            ) from None
        ids = sorted((k.removeprefix(CATALOG).removesuffix(".json.sealed") for k in versions if k.startswith(CATALOG)),
                     reverse=True)  # fmt: skip
        offers: list[Offer] = []
        refused: list[Refusal] = []
        for backup_id in ids:
            found = self._entry(backup_id, versions[entry_key(backup_id)], refused)
            if found is None:
                continue
            entry, replicated_at, size = found
            objects = versions.get(object_key(backup_id), [])
            if not objects:
                refused.append(Refusal(4, self.url, backup_id, "no version of the sealed object is left"))
            for n, version in enumerate(objects):
                fetch = functools.partial(self._fetch, version, entry, replicated_at)
                offers.append(Offer(4, self.url, entry, fetch, size if n == 0 else 0))
        return offers, refused

    def _entry(
        self, backup_id: str, version_ids: list[str], refused: list[Refusal]
    ) -> tuple[CatalogEntry, str, int] | None:
        """The newest version of the backup's catalog entry that authenticates; refusals for the others."""
        for version in version_ids:
            pinned = self.store.pinned({entry_key(backup_id): version})
            found = entry_or_refusal(pinned, backup_id, self.keys, self.url, f"entry version {version}: ")
            if not isinstance(found, Refusal):
                return found
            refused.append(found)
        return None

    def _fetch(self, version: str, entry: CatalogEntry, replicated_at: str, workdir: Path) -> Fetched:
        source = OffsiteSource(self.store.pinned({object_key(entry.id): version}), self.keys)
        try:
            return source.fetch(entry, replicated_at, workdir)
        except Refused as exc:
            raise Refused(f"object version {version}: {exc}", exc.fetched) from None
