# ruff: noqa: E501  (pattern tables read best one pattern per line)
"""The words the rule-based extractor (`planner.extract`) reads, as tables: who counts as a
user, the languages, the subject domains, the cues of each use case and priority, and the
words of peak and steady load. Data only; the code that reads them is in `extract`."""

from __future__ import annotations

TOKENS_PER_PAGE = 500
"""A page of prose: about 375 words, at 1.33 tokens a word."""
SECONDS_PER = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
PEOPLE = (
    r"users?|people|persons|employees|staff|agents|customers|clients|students|developers|"
    r"devs|engineers|members|seats|doctors|clinicians|nurses|lawyers|attorneys|analysts|"
    r"patients|subscribers|visitors|reps|representatives|operators|teachers|researchers|"
    r"colleagues|workers|accounts|players|shoppers|readers|traders|advisors|learners|brokers|"
    r"partners|residents|citizens|writers|editors|translators|reviewers|tenants|guests|"
    r"physicians|pharmacists|auditors|underwriters|adjusters|recruiters|sellers|merchants"
)

LANGUAGES = {
    "english": "en",
    "spanish": "es",
    "french": "fr",
    "german": "de",
    "italian": "it",
    "portuguese": "pt",
    "chinese": "zh",
    "mandarin": "zh",
    "cantonese": "zh",
    "japanese": "ja",
    "korean": "ko",
    "arabic": "ar",
    "hindi": "hi",
    "russian": "ru",
    "dutch": "nl",
    "polish": "pl",
    "turkish": "tr",
    "vietnamese": "vi",
    "thai": "th",
    "indonesian": "id",
    "swedish": "sv",
    "czech": "cs",
    "hebrew": "he",
    "greek": "el",
    "ukrainian": "uk",
    "danish": "da",
    "finnish": "fi",
    "norwegian": "no",
    "romanian": "ro",
    "hungarian": "hu",
    "bengali": "bn",
    "urdu": "ur",
    "tagalog": "tl",
    "filipino": "tl",
    "malay": "ms",
    "persian": "fa",
    "farsi": "fa",
    "catalan": "ca",
    "swahili": "sw",
}
SUBJECTS: dict[str, str] = {
    # Patterns start at a word boundary; the first domain that matches wins.
    "legal": r"legal|law firm|\blaw\b|lawyer|attorney|contracts?\b|litigation|paralegal|precedent|case.law",
    "medical": r"medical|clinical|clinician|hospital|patient|healthcare|health care|doctor|physician|radiolog|nurse|pharma",
    "insurance": r"insurance|insurer|underwriting|claims\b",
    "finance": r"financ|bank|trading|trader|investment|fintech|accounting|earnings",
    "education": r"education|student|school|teacher|tutor|university|course",
    "ecommerce": r"e-commerce|ecommerce|online (?:store|shop)|shopping|retail|product catalog",
    "customer_support": r"customer support|customer service|support tickets?|support agents?|help ?desk|call cent(?:er|re)",
    "hr": r"hr\b|human resources|recruit|payroll",
    "government": r"government|public sector|government agency|municipal|citizens?|city council|council",
    "science": r"scien|research papers?|biolog|chemi|physics",
    "travel": r"travel|airline|hotel|booking",
    "gaming": r"game|gaming|player|npc",
    "marketing": r"marketing|advertis|ad copy|campaign|seo\b",
    "security": r"security|threat|vulnerabilit|soc\b|malware|phishing",
}
USE_CASE_CUES: dict[str, tuple[tuple[str, float], ...]] = {
    # (pattern, weight): the use case whose cues weigh most wins; a cue that is negated
    # ("not a summarizer", "translation isn't the job") counts against it.
    "code_completion": (
        (r"autocomplet|auto-complet|code completion|completions? in the (?:ide|editor)", 4),
        (r"\b(?:ide|vs ?code|editor|jetbrains|intellij|neovim|vim)\b", 2),
        (
            r"as (?:they|developers|devs|engineers|people|users) type|while (?:they|developers|devs|engineers) type|inline suggestion|tab.complet|fill.in.the.middle|\bfim\b|copilot|next lines?",
            3,
        ),
    ),
    "code_generation": (
        (
            r"generat\w* code|writ\w* code|code generation|coding (?:agent|assistant)|unit tests?|tests included|pull requests?|\bsql\b|scripts?\b|refactor|bug fix|fix(?:es)? bugs|from (?:a |the )?tickets?|implement\w* features?|writes? (?:the )?(?:whole |entire |new )?(?:module|function|class|program|service)s?\b",
            3,
        ),
        (r"\bcode\b|\bcoding\b|programming|developer", 1),
    ),
    "rag_qa": (
        (
            r"\brag\b|retriev|knowledge.base|internal docs|documentation|our docs|engineering docs|manuals?|wiki|confluence|sharepoint|handbook|runbooks?|guidelines|regulations|case.law|database|catalog(?:ue)?\b|policies|policy documents|document search|search(?:ing)? (?:over|across|through|our)|search assistant|question.answering|(?:questions?|ask) (?:about|over|on|from) (?:our|the|their|internal|company)|answers? (?:\w+ )?(?:from|over|using|based on) (?:our|the|their)",
            3,
        ),
        (r"\bdocuments?\b|\bpdfs?\b|\bcorpus\b|faq", 1),
    ),
    "summarization": (
        (
            r"summar|condens|tl;?dr|digest|recap|meeting notes|short notes|key points|abstracts?\b",
            4,
        ),
    ),
    "translation": (
        (r"translat|locali[sz]|interpret(?:er|ing) between|from \w+ (?:in)?to \w+", 4),
    ),
    "batch_extraction": (
        (
            r"extract|pull\w* (?:out )?(?:fields|data|entities)|fields? (?:out )?of|parse|parsing|invoices?|receipts?|classif|tag(?:ging)?\b|label(?:ling|ing)?\b|structured (?:data|json|output)|as json|\bjson\b|named entit|\bner\b|form data|dates and amounts",
            3,
        ),
        (
            r"batch|overnight|nightly|every night|offline|backlog|millions of (?:documents|records|emails)",
            2,
        ),
    ),
    "content_generation": (
        (
            r"product descriptions?|marketing (?:copy|emails?)|ad copy|job ads?|press releases?|blog posts?|articles?\b|newsletters?|social media|posts?\b for|copywrit|write (?:emails|copy|content)|writes? (?:new )?(?:replies|quest|text|stories)|draft\w* (?:\w+ )?(?:emails|posts|replies|ads|letters)|content (?:generation|service)|generate content|generate (?:marketing|\w+ emails)|stories|slogans|captions|quest text",
            3,
        ),
    ),
    "reasoning": (
        (
            r"step.by.step|reasoning\b|reason through|math(?:s|ematic\w*)? (?:problems|proofs|olympiad)|olympiad|proofs?\b|theorem|logic puzzles?|chain.of.thought|complex (?:problems|analysis|planning)|agentic planning|think(?:ing)? (?:hard|through|at length)|multi.step",
            3,
        ),
    ),
    "chatbot": (
        (
            r"chat ?bot|chatbot|conversational|conversation|assistant|chats?\b|talk to|help ?desk|support bot|virtual agent|companion|turn by turn|answers? (?:users|customers|employees)|q&a bot",
            2,
        ),
    ),
}
PRIORITY_CUES: dict[str, str] = {
    "cost": r"cost (?:is what matters|first)|cheap|lowest cost|low cost|cost matters most|cost is (?:the )?(?:top|main|most important|key)|minimi[sz]e (?:the )?cost|save money|tight budget|cost.sensitive|budget is (?:the )?(?:top|main) (?:concern|priority)|cost.effective|as little as possible",
    "latency": r"lowest latency|low latency|as fast as possible|speed (?:is|matters)|latency (?:is|matters) (?:everything|most|critical|the top)|fastest|snappy|latency.critical|(?:latency|speed) first|instant(?:ly)?\b",
    "accuracy": r"(?:accuracy|quality) first|accura|best (?:possible )?(?:answers|quality|model)|highest quality|quality (?:is|matters) (?:most|everything|the top|key|critical)|most capable|smartest|quality first",
    "balanced": r"balance|trade.?off|middle ground|reasonable (?:cost|mix)|both cost and",
}

PEAK = r"\bpeak|\bspikes? (?:to|of|at)|at (?:the )?(?:busiest|peak)|burst(?:s|ing)? (?:to|of)|up to|maximum|max\b"
STEADY = r"steady|baseline|normally|usually|typically|average|on average|off.peak|most of the (?:day|time)"
