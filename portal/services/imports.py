"""Importing advocates from a CSV file: read it, map its columns, check every row, invite the valid ones.

``upload`` decodes the file (``decode``: UTF-8 with or without BOM, UTF-16/32 by BOM, Windows-1252 and its
Latin-1 family detected with charset-normalizer; anything else refused), finds the delimiter (comma or
semicolon) and the header row, and keeps the text in an ``ImportJob`` with a first mapping (the last job's
mapping for the columns it knew, then a guess from the header names). ``set_mapping`` stores the admin's
mapping; ``check`` gives every row's problems (the preview); ``run`` invites the valid rows in batches
(bulk inserts, one commit per batch, progress on the job) through ``invitations.create_many``. Running
the same file again invites nobody: every address is then "already invited".

Cells are data: a cell that looks like a formula (``=``, ``+``, ``-``, ``@``) is kept as plain text, never
evaluated; CSV exports neutralise it (``portal.exports.cell``). The file's text is cleared once its import
has run (the invitations keep what they need).

``run`` is the job runner: unlike other services it commits (per batch), as ``outbox.send_due`` does.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from math import ceil

import charset_normalizer
from flask import Flask, current_app
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session
from wtforms.validators import ValidationError

from portal.database import begin_write
from portal.extensions import db
from portal.forms import mailable_email
from portal.models import Country, ImportJob, ImportStatus, Industry, Invitation, Product, utcnow
from portal.services import audit, invitations
from portal.services.accounts import normalize_email
from portal.services.errors import Conflict, DomainError
from portal.services.outbox import deliver_after_appcontext

log = logging.getLogger(__name__)

SAVE_AS_UTF8 = 'In Excel choose File > Save As > "CSV UTF-8 (Comma delimited)" and upload that file.'

# field -> label; "" (not in here) means the column is ignored
FIELDS = {
    "email": "Email",
    "name": "Full name",
    "first_name": "First name",
    "last_name": "Last name",
    "company": "Company",
    "job_title": "Job title",
    "industry": "Industry",
    "country": "Country",
    "products": "Products",
}
# header words (normalised: lower case, letters and digits only) that name each field
SYNONYMS = {
    "email": {"email", "emailaddress", "mail", "workemail", "businessemail", "courriel", "emailadresse"},
    "name": {"name", "fullname", "contactname", "advocate", "advocatename", "customername"},
    "first_name": {"firstname", "givenname", "forename", "first", "vorname", "prenom"},
    "last_name": {"lastname", "surname", "familyname", "last", "nachname", "nom"},
    "company": {"company", "companyname", "organisation", "organization", "account", "accountname", "employer"},
    "job_title": {"jobtitle", "title", "role", "position", "job"},
    "industry": {"industry", "sector", "vertical"},
    "country": {"country", "countrycode", "land", "pays"},
    "products": {"products", "product", "productsused", "productused"},
}
FORMULA_STARTS = ("=", "+", "-", "@")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPLIT_PRODUCTS = re.compile(r"\s*[;,|/]\s*")


class ImportRefused(DomainError):
    """The file cannot be imported as it is (encoding, no header, no email column, empty, too large)."""

    status_code = 422


# --- reading the file ----------------------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Unicode blocks a Western (Windows-1252) file can hold; a best guess with another script (Cyrillic,
# Greek, CJK, Arabic, ...) means the file is in another legacy encoding.
_LATIN_BLOCKS = ("Control character", "General Punctuation", "Currency Symbols", "Spacing Modifier Letters")
_WORD_PUNCTUATION = set("’‘“”–—…€©®°·«»×\u00a0")


def _other_script(match: charset_normalizer.CharsetMatch) -> bool:
    return any("Latin" not in a and a not in _LATIN_BLOCKS for a in match.alphabets)


def _symbols_inside_words(text: str) -> int:
    """Non-ASCII symbols glued to letters ("£ukasz", "¯ó³æ"): Central European text read as Windows-1252."""
    count = 0
    for i, ch in enumerate(text):
        if ord(ch) < 128 or ch.isalpha() or ch in _WORD_PUNCTUATION:
            continue
        before = text[i - 1] if i else " "
        after = text[i + 1] if i + 1 < len(text) else " "
        if before.isalpha() or after.isalpha():
            count += 1
    return count


def decode(data: bytes) -> tuple[str, str]:
    """The file's text and the encoding it was read with, or ImportRefused saying what to do."""
    if not data.strip(b" \t\r\n\x00" + codecs.BOM_UTF8):
        raise ImportRefused("The file is empty. Upload a CSV file with a header row and one row per person.")
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(name), "utf-16" if name == "utf-16" else name
            except UnicodeDecodeError:
                raise ImportRefused(
                    f"The file starts like {name.upper()} but is not valid {name.upper()}. " + SAVE_AS_UTF8
                ) from None
    if b"\x00" in data:
        raise ImportRefused(
            "The file is not a text CSV file (it looks like UTF-16 without a byte order mark, "
            "or a spreadsheet). " + SAVE_AS_UTF8
        )
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    matches = list(charset_normalizer.from_bytes(data[:200_000]))
    if matches:
        least = min(m.chaos for m in matches)
        tier = [m for m in matches if m.chaos <= least + 0.01]
        if not any(_other_script(m) for m in tier):
            for encoding in ("cp1252", "latin-1"):
                try:
                    text = data.decode(encoding)
                except UnicodeDecodeError:
                    continue
                if _symbols_inside_words(text) == 0:
                    return text, "windows-1252" if encoding == "cp1252" else encoding
                break
    raise ImportRefused(
        "The file's character encoding could not be recognised: only UTF-8, UTF-16 and Windows-1252 files "
        "are read. " + SAVE_AS_UTF8
    )


def sniff_delimiter(text: str) -> str:
    """Comma or semicolon: whichever the header line holds more of, outside quotes."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    outside = re.sub(r'"[^"]*"', "", first)
    return ";" if outside.count(";") > outside.count(",") else ","


def _clean(value: str) -> str:
    return _CONTROL.sub("", value).strip()


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank record (the header first)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for cells in reader:
            cells = [_clean(c) for c in cells]
            if any(cells):
                yield reader.line_num, cells
    except csv.Error as err:
        raise ImportRefused(f"Line {reader.line_num} of the file cannot be read as CSV: {err}.") from None


def _header(text: str, delimiter: str) -> list[str]:
    first = next(_records(text, delimiter), None)
    if first is None:
        raise ImportRefused("The file is empty. Upload a CSV file with a header row and one row per person.")
    header = first[1]
    if len(set(h.casefold() for h in header if h)) != len([h for h in header if h]):
        raise ImportRefused("Two columns of the header row have the same name. Rename one and upload again.")
    if not all(header):
        raise ImportRefused(
            "The first row must be a header naming every column (one is blank). Add the names and upload again."
        )
    return header


def _normalised(header: str) -> str:
    plain = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", plain.lower())


def guess_mapping(header: list[str]) -> dict[str, str]:
    mapping, used = {}, set()
    for column in header:
        word = _normalised(column)
        for fld, words in SYNONYMS.items():
            if fld not in used and (word in words or (fld == "email" and "email" in word)):
                mapping[column] = fld
                used.add(fld)
                break
    return mapping


def last_mapping(session: Session) -> dict[str, str]:
    """The mapping of the most recent import whose mapping an admin confirmed."""
    mapping = session.scalar(
        select(ImportJob.mapping)
        .where(ImportJob.status != ImportStatus.UPLOADED)
        .order_by(ImportJob.created_at.desc(), ImportJob.id.desc())
        .limit(1)
    )
    return dict(mapping or {})


def initial_mapping(session: Session, header: list[str]) -> dict[str, str]:
    """The last confirmed mapping for the columns it names, then a guess from the header names."""
    remembered = last_mapping(session)
    mapping = {c: remembered[c] for c in header if remembered.get(c) in FIELDS}
    used = set(mapping.values())
    for column, fld in guess_mapping(header).items():
        if column not in mapping and fld not in used:
            mapping[column] = fld
            used.add(fld)
    return mapping


def _looks_like_email_column(text: str, delimiter: str, width: int) -> bool:
    records = _records(text, delimiter)
    next(records, None)
    for n, (_, cells) in enumerate(records):
        if n >= 200:
            break
        if any("@" in c for c in cells[:width]):
            return True
    return False


def upload(session: Session, filename: str, data: bytes, actor_id: int | None) -> ImportJob:
    """Read the uploaded file into a new job (refused with ImportRefused when it cannot be imported)."""
    limit = current_app.config["IMPORT_MAX_BYTES"]
    if len(data) > limit:
        raise ImportRefused(f"The file is larger than {limit // (1024 * 1024)} MB. Split it and upload each part.")
    text, encoding = decode(data)
    delimiter = sniff_delimiter(text)
    header = _header(text, delimiter)
    total = sum(1 for _ in _records(text, delimiter)) - 1
    if total <= 0:
        raise ImportRefused("The file has a header row but no rows of people.")
    mapping = initial_mapping(session, header)
    if "email" not in mapping.values() and not _looks_like_email_column(text, delimiter, len(header)):
        raise ImportRefused(
            "The file has no email column: every person needs an email address to be invited. "
            "Add a column of email addresses and upload again."
        )
    job = ImportJob(
        created_by_id=actor_id,
        filename=(filename or "upload.csv")[-255:],
        content=text,
        encoding=encoding,
        delimiter=delimiter,
        header=header,
        mapping=mapping,
        total=total,
    )
    session.add(job)
    session.flush()
    audit.record(session, "import.upload", actor_id, job, filename=job.filename, rows=total, encoding=encoding)
    return job


# --- mapping -------------------------------------------------------------------------------------------------


def set_mapping(session: Session, job: ImportJob, mapping: dict[str, str], actor_id: int | None) -> ImportJob:
    """Store the admin's mapping (column -> field, blank: ignored); every field at most once, email required."""
    _editable(job)
    clean = {c: f for c, f in mapping.items() if c in job.header and f}
    unknown = sorted({f for f in clean.values() if f not in FIELDS})
    if unknown:
        raise DomainError(f"Unknown field: {', '.join(unknown)}.")
    twice = sorted({FIELDS[f] for f in clean.values() if list(clean.values()).count(f) > 1})
    if twice:
        raise DomainError(f"Each field can come from one column only: {', '.join(twice)} is chosen twice.")
    if "email" not in clean.values():
        raise DomainError("Choose the column that holds the email addresses: every person needs one.")
    before = dict(job.mapping or {})
    job.mapping = clean
    job.status = ImportStatus.MAPPED
    audit.record(session, "import.map", actor_id, job, before=before, after=clean)
    return job


def _editable(job: ImportJob) -> None:
    if job.status not in (ImportStatus.UPLOADED, ImportStatus.MAPPED):
        raise Conflict("This import has already run: upload the file again to import it again.")


# --- checking the rows ---------------------------------------------------------------------------------------


@dataclass
class Problem:
    message: str
    blocking: bool = True  # the row is skipped; False: the value is left out, the person still invited


@dataclass
class Row:
    line: int
    email: str
    invitee: invitations.Invitee
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.blocking for p in self.problems)


@dataclass
class Check:
    rows: list[Row]

    @property
    def valid(self) -> list[Row]:
        return [r for r in self.rows if r.ok]

    @property
    def with_problems(self) -> list[Row]:
        return [r for r in self.rows if r.problems]

    @property
    def skipped(self) -> int:
        return sum(1 for r in self.rows if not r.ok)


class _Field:
    """Just enough of a WTForms field for the registration form's email validators."""

    def __init__(self, data: str):
        self.data = data

    @staticmethod
    def gettext(text: str) -> str:
        return text

    @staticmethod
    def ngettext(singular: str, plural: str, n: int) -> str:
        return singular if n == 1 else plural


def email_problem(value: str) -> str | None:
    """Why this address cannot be used, by the same validators as the registration form (None: it can)."""
    if not value:
        return "no email address"
    if len(value) > 254:
        return "the email address is too long"
    try:
        for validator in mailable_email():
            validator(None, _Field(value))
    except ValidationError as err:
        return f"invalid email address ({err})"
    return None


class _Lookup:
    """A list admins manage, matched by name (any case), with the closest known name suggested."""

    def __init__(self, items: dict[str, object], label: str):
        self.by_key = {k.casefold(): v for k, v in items.items()}
        self.names = {k.casefold(): k for k in items}
        self.label = label

    def find(self, value: str) -> tuple[object | None, Problem | None]:
        hit = self.by_key.get(value.casefold())
        if hit is not None:
            return hit, None
        close = difflib.get_close_matches(value.casefold(), list(self.names), n=1, cutoff=0.6)
        hint = f' Did you mean "{self.names[close[0]]}"?' if close else ""
        return None, Problem(f'unknown {self.label} "{value}": left blank.{hint}', blocking=False)


def _lookups(session: Session) -> dict[str, _Lookup]:
    industries = {i.name: i.id for i in session.scalars(select(Industry).where(Industry.active.is_(True)))}
    products = {p.name: p.id for p in session.scalars(select(Product).where(Product.active.is_(True)))}
    countries = {}
    for c in session.scalars(select(Country)):
        countries[c.name] = c.code
        countries[c.code] = c.code
    return {
        "industry": _Lookup(industries, "industry"),
        "country": _Lookup(countries, "country"),
        "products": _Lookup(products, "product"),
    }


def _limited(value: str, limit: int, label: str, problems: list[Problem]) -> str:
    if len(value) > limit:
        problems.append(Problem(f"the {label} is longer than {limit} characters: cut to fit.", blocking=False))
        return value[:limit]
    return value


def _row(line: int, values: dict[str, str], lookups: dict[str, _Lookup]) -> Row:
    problems: list[Problem] = []
    raw_email = values.get("email", "")
    email = normalize_email(raw_email)
    reason = email_problem(email)
    if reason:
        problems.append(Problem(reason))
    name = values.get("name") or " ".join(v for v in (values.get("first_name"), values.get("last_name")) if v)
    person = invitations.Invitee(
        email=email,
        name=_limited(name, 120, "name", problems),
        company=_limited(values.get("company", ""), 160, "company", problems),
        job_title=_limited(values.get("job_title", ""), 160, "job title", problems),
    )
    if values.get("industry"):
        person.industry_id, problem = lookups["industry"].find(values["industry"])
        problems += [problem] if problem else []
    if values.get("country"):
        person.country_code, problem = lookups["country"].find(values["country"])
        problems += [problem] if problem else []
    for product in _SPLIT_PRODUCTS.split(values.get("products", "")):
        if product:
            product_id, problem = lookups["products"].find(product)
            if product_id:
                person.product_ids.append(product_id)
            problems += [problem] if problem else []
    return Row(line=line, email=email, invitee=person, problems=problems)


def check(session: Session, job: ImportJob) -> Check:
    """Every row of the file with its problems: no or an invalid address (skipped), a repeat of an earlier
    row (skipped), an address that has an account, a pending invitation or was erased (skipped); an
    unknown industry, country or product (left blank, the closest known name suggested)."""
    columns = {f: job.header.index(c) for c, f in (job.mapping or {}).items() if c in job.header}
    lookups = _lookups(session)
    rows: list[Row] = []
    first_seen: dict[str, int] = {}
    records = _records(job.content, job.delimiter)
    next(records, None)
    for line, cells in records:
        values = {f: cells[i] if i < len(cells) else "" for f, i in columns.items()}
        row = _row(line, values, lookups)
        if row.email and row.ok:
            if row.email in first_seen:
                row.problems.insert(0, Problem(f"the same address as line {first_seen[row.email]}: skipped"))
            else:
                first_seen[row.email] = line
        rows.append(row)
    blocked = invitations.taken(session, list(first_seen))
    mine = invited_by(session, job.id)  # a resumed job's own invitations are its work, not a reason to skip
    for row in rows:
        if row.ok and row.email not in mine:
            reason = blocked.reason(row.email)
            if reason:
                row.problems.insert(0, Problem(f"{reason}: skipped"))
    return Check(rows)


@dataclass
class PreviewPage:
    rows: list[Row]
    page: int
    pages: int
    total: int
    valid: int
    skipped: int
    with_problems: int


PREVIEW_PER_PAGE = 50


def preview(session: Session, job: ImportJob, page: int = 1, only_problems: bool = False) -> PreviewPage:
    result = check(session, job)
    shown = result.with_problems if only_problems else result.rows
    pages = max(1, ceil(len(shown) / PREVIEW_PER_PAGE))
    page = min(max(page, 1), pages)
    start = (page - 1) * PREVIEW_PER_PAGE
    return PreviewPage(
        rows=shown[start : start + PREVIEW_PER_PAGE],
        page=page,
        pages=pages,
        total=len(result.rows),
        valid=len(result.valid),
        skipped=result.skipped,
        with_problems=len(result.with_problems),
    )


# --- running the import --------------------------------------------------------------------------------------


def invited_by(session: Session, job_id: int) -> set[str]:
    """The addresses this job has invited (before it was cut off, when it is resumed)."""
    return set(session.scalars(select(Invitation.email).where(Invitation.import_job_id == job_id)))


def _stalled_before(now: datetime) -> datetime:
    return now - timedelta(seconds=current_app.config["IMPORT_STALL_SECONDS"])


def interrupted(job: ImportJob, now: datetime | None = None) -> bool:
    """A job marked running that has committed no batch for IMPORT_STALL_SECONDS: its process ended (a
    restart, a deploy) and nobody runs it; ``resume`` runs it again."""
    last = job.heartbeat_at or job.started_at
    return job.status == ImportStatus.RUNNING and last is not None and last < _stalled_before(now or utcnow())


def resume(session: Session, job: ImportJob, actor_id: int | None) -> ImportJob:
    """Mark a failed or interrupted job as running again (the caller then runs it, after its commit). Only one
    of several clicks at once claims it. The rows it invited before are not invited again (``invited_by``)."""
    now = utcnow()
    last = func.coalesce(ImportJob.heartbeat_at, ImportJob.started_at)
    claimed = session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == job.id,
            or_(
                ImportJob.status == ImportStatus.FAILED,
                (ImportJob.status == ImportStatus.RUNNING) & (last < _stalled_before(now)),
            ),
        )
        .values(status=ImportStatus.RUNNING, heartbeat_at=now, finished_at=None, error=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        raise Conflict("This import is running or done: there is nothing to resume.")
    session.refresh(job)
    audit.record(session, "import.resume", actor_id, job, filename=job.filename, done=job.done, total=job.total)
    return job


def start(session: Session, job: ImportJob, actor_id: int | None) -> ImportJob:
    """Mark a mapped job as running (the caller then runs it, after its commit)."""
    if job.status == ImportStatus.UPLOADED:
        raise DomainError("Confirm the mapping of the columns first.")
    if job.status != ImportStatus.MAPPED:
        raise Conflict("This import has already been started.")
    if not check(session, job).valid:
        raise DomainError("Nothing in this file can be imported: every row has a problem that skips it.")
    job.status = ImportStatus.RUNNING
    job.started_at = job.heartbeat_at = utcnow()
    job.done = job.invited = job.skipped = job.problems = 0
    audit.record(session, "import.start", actor_id, job, filename=job.filename, rows=job.total)
    return job


Progress = Callable[[int, int], None]


def run(session: Session, job_id: int, on_progress: Progress | None = None) -> ImportJob:
    """Invite the valid rows of a running job, a batch per commit, its progress on the job (and given to
    ``on_progress(done, total)``). Its own unit of work: the session must have no open transaction. On an
    unexpected error the job is marked failed and the error propagates."""
    batch = current_app.config["IMPORT_BATCH_SIZE"]
    begin_write(session)
    job = session.get(ImportJob, job_id)
    if job is None or job.status != ImportStatus.RUNNING:
        session.rollback()
        raise Conflict("This import is not waiting to run.")
    try:
        result = check(session, job)
        mine = invited_by(session, job_id)  # resumed: what it invited before it was cut off
        job.total = total = len(result.rows)
        job.skipped = result.skipped
        job.problems = len(result.with_problems)
        job.invited = len(mine)
        job.heartbeat_at = utcnow()
        actor_id = job.created_by_id
        session.commit()
        _progress(on_progress, 0, total)
        rows, done = result.rows, 0
        for start_at in range(0, len(rows), batch):
            chunk = rows[start_at : start_at + batch]
            begin_write(session)
            job = session.get(ImportJob, job_id)
            fresh = [r for r in chunk if r.ok and r.email not in mine]
            invited = invitations.create_many(session, [r.invitee for r in fresh], actor_id, import_job_id=job_id)
            done += len(chunk)
            job.invited += invited
            job.skipped += len(fresh) - invited  # taken meanwhile (another import)
            job.done = done
            job.heartbeat_at = utcnow()
            session.commit()
            deliver_after_appcontext()  # "inline" delivery: this batch's email now
            _progress(on_progress, done, total)
            session.rollback()  # the batch is committed: end any read the delivery or the callback began
        begin_write(session)
        job = session.get(ImportJob, job_id)
        job.status = ImportStatus.DONE
        job.finished_at = utcnow()
        job.content = ""  # the file's personal data is not kept once imported
        audit.record(
            session, "import.run", actor_id, job, invited=job.invited, skipped=job.skipped, problems=job.problems
        )
        session.commit()
        return job
    except Exception as err:
        session.rollback()
        _fail(session, job_id, err)
        raise


def _progress(on_progress: Progress | None, done: int, total: int) -> None:
    if on_progress is not None:
        on_progress(done, total)


def _fail(session: Session, job_id: int, err: Exception) -> None:
    begin_write(session)
    job = session.get(ImportJob, job_id)
    job.status = ImportStatus.FAILED
    job.finished_at = utcnow()
    job.error = err.message if isinstance(err, DomainError) else "An unexpected error stopped the import."
    audit.record(session, "import.fail", job.created_by_id, job, error=job.error)
    session.commit()


def run_in_background(app: Flask, job_id: int, wait: bool = False) -> threading.Thread:
    """Run the job in a thread with its own app context (and session); ``wait``: until it is done."""

    def work():
        with app.app_context():
            try:
                run(db.session, job_id)
            except Exception:
                log.exception("import job %s failed", job_id)

    thread = threading.Thread(target=work, name=f"import-{job_id}", daemon=True)
    thread.start()
    if wait:
        thread.join()
    return thread


def recent_jobs(session: Session, limit: int = 50) -> list[ImportJob]:
    return list(
        session.scalars(select(ImportJob).order_by(ImportJob.created_at.desc(), ImportJob.id.desc()).limit(limit))
    )
