"""Secrets and personal data never leave where they belong.

A whole ``unionwh run`` into PostgreSQL, as a user starts it (a child process), with a
warehouse URL carrying a password, a pseudonymisation key and a notification URL: none of
the three appears in anything the run leaves behind: its console output (every log line,
dbt's included), the run folder (Data Docs, dbt artifacts and logs, reports), Prefect's
database (flow and task runs, their parameters and logs) or the warehouse's tables. Then a
run that fails to connect: its error names the server, never the password. And no resident
ID, phone number or name (three characters or more) of the raw layer appears in the logs,
the reports, Data Docs, dbt artifacts or Prefect's database.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import zipfile
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.support import clean_env, create_database, drop_database, postgres_or_skip, prefect_text

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

UNIONWH = [sys.executable, "-m", "flows.cli"]


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def file_text(path: Path) -> str:
    """A file's text; a .docx (zip) is the text of its parts."""
    if path.suffix == ".docx":
        with zipfile.ZipFile(path) as z:
            return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    return path.read_bytes().decode("utf-8", "replace")


def warehouse_text(url: str) -> str:
    """Every row of every table of the warehouse database, as text."""
    u = make_url(url)
    out: list[str] = []
    with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=u.database) as con:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema "
            "NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'"
        ).fetchall()
        for schema, name in tables:
            for (row,) in con.execute(f'SELECT t::text FROM "{schema}"."{name}" AS t'):
                out.append(row)
    return "\n".join(out)


def test_no_secret_and_no_personal_data_in_anything_a_run_leaves(tmp_path: Path) -> None:
    server = postgres_or_skip()
    name = f"unionwh_secrets_{secrets.token_hex(4)}"
    password, key, token = (
        f"pw-{secrets.token_hex(12)}",
        f"key-{secrets.token_hex(16)}",
        f"tok-{secrets.token_hex(12)}",
    )
    base = make_url(server)
    url = base.set(password=password, database=name).render_as_string(hide_password=False)
    assert password in url  # (trust authentication: the server accepts any password)
    env = dict(
        clean_env(),
        UNIONWH_HOME=str(tmp_path),
        PREFECT_HOME=str(tmp_path / "prefect"),
        UNIONWH_WAREHOUSE=url,
        UNIONWH_PII_KEY=key,
        UNIONWH_NOTIFY_URL=f"json://127.0.0.1:9/{token}",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    create_database(server, name)
    try:
        demo = subprocess.run(
            [*UNIONWH, "demo", "--year", "2021"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert demo.returncode == 0, demo.stderr[-2000:]
        run = subprocess.run(
            [*UNIONWH, "run", "--year", "2021"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        console = run.stdout + run.stderr
        assert "succeeded" in console and "dbt build" in console  # the logs were captured
        outputs = [p for p in files_under(tmp_path / "data" / "runs")]
        assert any(p.name == "manifest.json" for p in outputs) and any(p.suffix == ".html" for p in outputs)
        texts = {
            "console": console,
            "prefect database": prefect_text(tmp_path / "prefect"),
            "warehouse": warehouse_text(url),
        }
        texts |= {str(p.relative_to(tmp_path)): file_text(p) for p in outputs}
        assert "nightly-load" in texts["prefect database"]
        masked = make_url(url).render_as_string(hide_password=True)
        assert masked in console  # the URL is printed, masked: the grep looks where it would be
        for secret in (password, key, token):
            leaks = [where for where, text in texts.items() if secret in text]
            assert leaks == [], f"{secret[:3]}… found in {leaks}"

        # personal data of the raw layer (restricted) in none of the outputs but the warehouse
        u = make_url(url)
        with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=u.database) as con:
            ids = {
                r[0]
                for r in con.execute(
                    "SELECT id_card FROM raw.members__member WHERE id_card IS NOT NULL "
                    "UNION SELECT id_card FROM raw.welfare__condolence WHERE id_card IS NOT NULL"
                )
            }
            phones = {
                r[0] for r in con.execute("SELECT phone FROM raw.members__member WHERE phone IS NOT NULL")
            }
            names = {
                r[0]
                for r in con.execute(
                    "SELECT name FROM raw.members__member WHERE length(name) >= 3 "
                    "UNION SELECT name FROM raw.welfare__condolence WHERE length(name) >= 3"
                )
            }
        assert len(ids) > 30_000 and len(phones) > 30_000 and len(names) > 1_000
        token_re = re.compile(r"[0-9]{17}[0-9Xx]|1[0-9]{10}")
        restricted = {m.group(0).upper() for m in token_re.finditer(texts["warehouse"])}
        assert restricted & ids and restricted & phones  # where they may be, the same search finds them
        for where, text in texts.items():
            if where == "warehouse":
                continue
            found = {m.group(0).upper() for m in token_re.finditer(text)}
            assert not found & ids, f"resident IDs in {where}"
            assert not found & phones, f"phone numbers in {where}"
            grams = {
                run[i : i + n]
                for run in set(re.findall(r"[\u4e00-\u9fff]{3,}", text))
                for n in (3, 4)
                for i in range(len(run) - n + 1)
            }
            assert not grams & names, f"names in {where}: {sorted(grams & names)[:3]}"

        # a run that cannot reach its warehouse says so without the password
        env_bad = dict(
            env,
            UNIONWH_WAREHOUSE=base.set(password=password, port=1, database=name).render_as_string(
                hide_password=False
            ),
            UNIONWH_LOCK_WAIT_SECONDS="0",
        )
        bad = subprocess.run(
            [*UNIONWH, "run", "--year", "2021"],
            env=env_bad,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert bad.returncode != 0 and bad.stdout + bad.stderr
        assert password not in bad.stdout + bad.stderr and token not in bad.stdout + bad.stderr
        assert password not in prefect_text(tmp_path / "prefect")
    finally:
        drop_database(server, name)
