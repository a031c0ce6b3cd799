"""The secret scanner: ``python -m pytest_llmport scan PATH...`` and ``--llmport-scan=PATH``.

Credential-shaped strings are built at run time, so this file itself scans clean.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from pytest_llmport import scan
from pytest_llmport.placeholders import PLACEHOLDER_KEYS

from .hostile import jwt

ROOT = Path(__file__).resolve().parent.parent
HEX = "0123456789abcdef"
SAMPLES = {
    "OpenAI-style key": "sk-" + "proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8t",
    "Anthropic key": "sk-" + "ant-api03-" + "Xy1Zw2Vu3Ts4Rq5Po6Nm7Lk8",
    "Google API key": "AIza" + "Sy" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7",
    "Qianfan key": "bce-v3/" + "ALTAK-" + "Qz8Wx7Ec6Rv5Tb4Yn3/" + HEX + "fedcba98",
    "Zhipu key": HEX * 2 + "." + "AbCdEfGhIjKlMnOp",
    "JWT": jwt(HEX * 2 + "." + "AbCdEfGhIjKlMnOp"),
    "Volcengine access key": "AKLT" + "Mz" + "Y2NjYWQ5ZmE0YjM1NDE4OTk",
    "Tencent SecretId": "AKID" + "Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56",
    "Ark API key": "Bearer " + "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b",
    "Bearer token": "Authorization: Bearer " + "opaque.Token_" + "9f8e7d6c5b4a",
    "Basic credentials": "Basic " + base64.b64encode(b"user:" + b"pa55word-" + b"9f8e7d").decode(),
    "credential assignment": "QIANFAN_SK=" + "Zx9Cv8Bn7Mm6Lk5Jh4Gf3Ds2Aq1We0Rt",
}
KEY = "sk-llmport-scan-" + "7f3a9c2e51d4b6a8"


def run(paths: list[Path], capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = scan.main([*map(str, paths), *extra])
    out, err = capsys.readouterr()
    return code, out + err


def test_bundled_examples_scan_clean(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    code, out = run([Path("examples"), Path("tests/fixtures")], capsys)
    assert code == 0, out
    assert "no secret found" in out


@pytest.mark.parametrize("pattern", sorted(SAMPLES))
def test_each_credential_shape_is_found_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pattern: str
) -> None:
    secret = SAMPLES[pattern]
    (tmp_path / "cassettes").mkdir()
    file = tmp_path / "cassettes" / "openai.yaml"
    file.write_text(f"version: 1\n# a note\n      - '{secret}'\n", encoding="utf-8")
    code, out = run([tmp_path], capsys)
    assert code == 1
    line = out.splitlines()[0]
    assert line.startswith(f"{file}:3:") and pattern in line, out
    assert "sha256:" in line and "[" in line and "chars]" in line
    # Never the secret itself: at most its first four characters. Every ten-character window
    # past them is checked, because a JWT's signature changes with the clock and may hold "-".
    token = secret.rsplit(" ", 1)[-1].split("SK=")[-1]
    assert token not in out
    leaked = [token[i : i + 10] for i in range(4, len(token) - 9) if token[i : i + 10] in out]
    assert not leaked, out


def test_known_key_values_are_found_in_any_spelling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    monkeypatch.setenv("TENANT_TOKEN", "tenant-" + "7f3a9c2e51")
    spellings = [
        quote(KEY, safe=""),
        "".join(f"\\u{ord(c):04x}" for c in KEY),
        base64.b64encode(b"user:" + KEY.encode()).decode(),
        "tenant-" + "7f3a9c2e51",
    ]
    (tmp_path / "a.json").write_text("\n".join(f'{{"x": "{s}"}}' for s in spellings) + "\n", encoding="utf-8")
    code, out = run([tmp_path], capsys, "--env", "TENANT_TOKEN")
    assert code == 1
    assert out.count("known value of DEEPSEEK_API_KEY") == 3, out
    assert "known value of TENANT_TOKEN" in out
    assert KEY not in out and "7f3a9c2e51" not in out


def test_markers_placeholders_and_allowed_findings_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [
        "authorization:\n- REDACTED",
        "x-api: Bearer <REDACTED:OPENAI_API_KEY>",
        '"access_token": "REDACTED", "content": "我的密钥是 <REDACTED:MOONSHOT_API_KEY>"',
        *(f"key: {key}" for key in sorted(PLACEHOLDER_KEYS)),
        "Authorization: Bearer llmport-replay-key",
        SAMPLES["OpenAI-style key"] + "  # documented test key, llmport-scan: allow",
    ]
    (tmp_path / "clean.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert run([tmp_path], capsys) == (0, "llmport scan: 1 file(s), no secret found\n")

    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "old.yaml").write_text(SAMPLES["Zhipu key"] + "\n", encoding="utf-8")
    (tmp_path / "fp.txt").write_text("model: " + SAMPLES["Google API key"] + "\n", encoding="utf-8")
    code, out = run([tmp_path], capsys)
    assert code == 1 and out.count("\n") == 3
    google = next(line for line in out.splitlines() if "Google" in line)
    fingerprint = google.split("(allow it: ")[1].split()[0]
    allow = tmp_path / "allow.txt"
    allow.write_text(f"# reviewed\n{fingerprint}  # a public sample\npath:*/legacy/*\n", encoding="utf-8")
    assert run([tmp_path], capsys, "--allow", str(allow))[0] == 0
    monkeypatch.chdir(tmp_path)
    Path(".llmport-scan-allow").write_text(allow.read_text(encoding="utf-8"), encoding="utf-8")
    assert run([Path(".")], capsys)[0] == 0, (
        "the allow file in the current folder counts (and is not scanned)"
    )


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run([tmp_path / "missing"], capsys)
    assert code == 2 and "no such file or folder" in out
    bad = tmp_path / "allow"
    bad.write_text("sk-something\n", encoding="utf-8")
    code, out = run([tmp_path], capsys, "--allow", str(bad))
    assert code == 2 and "neither 'sha256:<fingerprint>' nor 'path:<glob>'" in out


def test_the_command_runs_through_the_dispatcher(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("token: " + SAMPLES["Anthropic key"] + "\n", encoding="utf-8")
    listed = subprocess.run(
        [sys.executable, "-m", "pytest_llmport", "--help"], capture_output=True, text=True, check=True
    )
    assert "scan" in listed.stdout
    found = subprocess.run(
        [sys.executable, "-m", "pytest_llmport", "scan", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 1 and "Anthropic key" in found.stdout


def test_the_option_fails_the_run_and_names_the_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("LOCAL_LLM_API_KEY", KEY)
    pytester.makepyfile(
        test_app="import pytest\n\n@pytest.mark.llm_portable\ndef test_ping(llm_provider):\n    pass\n"
    )
    leaked = pytester.path / "notes" / "debug.log"
    leaked.parent.mkdir()
    leaked.write_text(f"sent {KEY}\n", encoding="utf-8")
    result = pytester.runpytest("--providers=local", "--llmport-scan=cassettes", *xdist_args)
    result.assert_outcomes(passed=1)
    assert result.ret == 0, "the cassettes the run wrote scan clean"
    result = pytester.runpytest(
        "--providers=local", "--llmport-scan=cassettes", "--llmport-scan=notes", *xdist_args
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*llmport: secrets found (--llmport-scan)*", "*notes/debug.log:1:6: known value of *"]
    )
    assert KEY not in result.stdout.str()
