# ruff: noqa: E501  (pattern tables read best one pattern per line)
"""The words the rule-based extractor (`planner.extract`) reads, as tables: who counts as a
user, the languages, the subject domains, the cues of each use case and priority, and the
words of peak and steady load. Data only; the code that reads them is in `extract`."""

from __future__ import annotations

import re

TOKENS_PER_PAGE = 500
"""A page of prose: about 375 words, at 1.33 tokens a word."""
TOKENS_PER_WORD = 1.33
"""English prose in a Llama-class tokenizer."""
SECONDS_PER = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "night": 86400,
    "week": 604800,
    "month": 2592000,  # 30 days
}
PEOPLE = (
    r"users?|people|persons|employees|staff|agents|customers|clients|students|developers|"
    r"devs|engineers|members|seats|doctors|clinicians|nurses|lawyers|attorneys|analysts|"
    r"patients|subscribers|visitors|reps|representatives|operators|teachers|researchers|"
    r"colleagues|workers|accounts|players|shoppers|readers|traders|advisors|learners|brokers|"
    r"partners|residents|citizens|writers|editors|translators|reviewers|tenants|guests|sres|"
    r"physicians|pharmacists|auditors|underwriters|adjusters|recruiters|sellers|merchants|"
    r"techs|households|volunteers|clergy|parishioners|riders|drivers|farmers|pilots|pupils|engs"
)
NOT_PEOPLE = (
    r"answers|orders|papers|numbers|letters|characters|parameters|layers|servers|containers|"
    r"chapters|filters|headers|transfers|vectors|monitors|errors|sensors|factors|documents|"
    r"incidents|comments|payments|events|segments|components|requirements|contents|"
    r"agreements|statements|attachments|cents|variants|constraints|markers|banners|"
    r"clusters|registers|trackers|timers|folders|offers|invoices|others|totals|signals|rentals|"
    r"intervals|portals|journals|tutorials|proposals|approvals|manuals|materials|terminals|"
    r"animals|referrals|arrivals|credentials|hospitals|channels|models|levels|pixels|panels|"
    r"renewals|withdrawals|disposals|removals|reversals|trials|"
    r"tools|emails|details|goals|deals|files|reels|newsletters|quarters|flyers|posters|"
    r"computers|printers|vouchers|appointments|shipments|assignments|announcements|"
    r"treatments|settlements|investments|enrollments|departments|apartments|experiments"
)
"""Plural nouns with a person's ending that name things ("500 orders", "20k documents")."""
PEOPLE_NOUN = (
    rf"(?:{PEOPLE}|person|ppl|eng|folks|kids|children|humans|seats|licen[cs]es|mau|dau|wau|actives|enrolled|clerks|postdocs|hosts|"
    rf"graduates|trainees|interns|apprentices|dokter|juristen|advogados|journalistes|médicos|medicos|ärzte|mitarbeiter|mitarbeitende|employés|funcionários|funcionarios|estudiantes|alunos|karyawan|"
    rf"workforce|headcount|actuaries|secretaries|mechanics|associates|crew|families|candidates|parents|"
    rf"\b(?!(?:{NOT_PEOPLE})\b)[a-z]+(?:ers|ors|ists|ians|ees|ants|ents|als|grads))"
)
"""Who a head count counts: the usual nouns, and any plural with a person's ending
("SREs" aside: fee earners, caseworkers, actuaries, technicians, journalists, trainees)."""

LANGUAGES = {
    "english": "en",
    "spanish": "es",
    "french": "fr",
    "german": "de",
    "italian": "it",
    "portuguese": "pt",
    "portugese": "pt",
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
    "welsh": "cy",
    "irish": "ga",
    "somali": "so",
    "haitian creole": "ht",
    "haitian": "ht",
    "lithuanian": "lt",
    "latvian": "lv",
    "estonian": "et",
    "slovak": "sk",
    "slovenian": "sl",
    "croatian": "hr",
    "serbian": "sr",
    "bulgarian": "bg",
    "icelandic": "is",
    "basque": "eu",
    "galician": "gl",
    "afrikaans": "af",
    "amharic": "am",
    "tamil": "ta",
    "telugu": "te",
    "marathi": "mr",
    "gujarati": "gu",
    "punjabi": "pa",
    "kannada": "kn",
    "malayalam": "ml",
    "nepali": "ne",
    "sinhala": "si",
    "burmese": "my",
    "khmer": "km",
    "mongolian": "mn",
    "kazakh": "kk",
    "uzbek": "uz",
    "azerbaijani": "az",
    "georgian": "ka",
    "armenian": "hy",
    "albanian": "sq",
    "macedonian": "mk",
    "yoruba": "yo",
    "igbo": "ig",
    "zulu": "zu",
    "xhosa": "xh",
    "hausa": "ha",
    "pashto": "ps",
    "kurdish": "ku",
    "maori": "mi",
    "brazilian": "pt",
    "javanese": "jv",
    "sundanese": "su",
    "bahasa indonesia": "id",
    "bahasa melayu": "ms",
    # Languages named in their own words.
    "português": "pt",
    "portugues": "pt",
    "deutsch": "de",
    "français": "fr",
    "francais": "fr",
    "español": "es",
    "espanol": "es",
    "italiano": "it",
    "nederlands": "nl",
    "polski": "pl",
    "svenska": "sv",
    "norsk": "no",
    "dansk": "da",
    "suomi": "fi",
    "türkçe": "tr",
    "русский": "ru",
    "українська": "uk",
    "ελληνικά": "el",
    "العربية": "ar",
    "עברית": "he",
    "हिन्दी": "hi",
    "中文": "zh",
    "日本語": "ja",
    "한국어": "ko",
}
LANGUAGE_CODE_LIST = re.compile(
    r"\b[A-Za-z]{2}(?:-[A-Za-z]{2})?\b"
    r"(?:\s*(?:/|,|\+|<->|<>|->|→|↔|=>|>|\binto\b|\bto\b|,?\s*\band\b)\s*\b[A-Za-z]{2}(?:-[A-Za-z]{2})?\b)+"
    r"|\b[A-Z]{2}-[A-Z]{2}\b"
)
"""Languages as codes, the way a translation job is written: "EN -> FR/DE", "ja -> en",
"EN-JA" (in capitals, with an arrow, or three or more known codes in a row: "en/ja/ko";
"it" and "no" alone are words)."""
SUBJECTS: dict[str, str] = {
    # Patterns start at a word boundary; the domain with most distinct words named wins, the
    # earlier on a tie.
    "legal": r"legal|law firm|\blaw\b|lawyer|attorney|contracts?\b|litigation|paralegal|precedent|case.law|court|fee earners|judgments?|\bndas?\b|clauses|statutes?|legislation|e-?discovery|depositions?|counsel|barristers?|solicitors?",
    "medical": r"medical|\bgp\b|referral letters|practitioners|clinical|clinician|hospital|patient|healthcare|health care|doctor|physician|radiolog|nurse|pharmac(?:y|ist|ovigilance|eutical)|pharma\b|drug safety|lab reports|diagnos\w*|\behr\b|\bemr\b|discharge|symptom|tele-?health|clinic\b|cardiolog|oncolog|dental|dentist",
    "insurance": r"insurance|insurer|underwrit\w*|claims\b|claim (?:forms?|files?)|policy renewals?|renewal letters|policyholder|premiums|adjusters?|reinsurance",
    "finance": r"financ|bank|pensions?\b|tax (?:advis\w*|firm|practice|clients|cases)|sec filings|trustee|trading|trader|investment|fintech|accounting|accountants?|\bquant (?:funds?|trad\w*|desks?|firms?|analysts?|research desk)|derivatives|hedge funds?|\bthe fund\b|equit(?:y|ies)|card transactions|earnings|wealth|portfolio|asset manag|\bkyc\b|\baml\b|brokerage|mortgage|credit (?:risk|card)|10-[kq]\b|debt collection|\bfraud\b|quantitative (?:risk|analys\w*|research)|\bquants\b",
    "education": r"education|edtech|language.learning|learners|admi+s+ions?|applicants|\buniv\b|stud(?:e)?n(?:e)?ts?|school|teach|tutor|universit|\buni\b|college|course|lecture|undergrad|homework|enrolled|worksheets|classroom|curriculum|\bexams?\b|quiz|campus|\bk-?12\b|e-?learning|olympiad training|training camp",
    "ecommerce": r"e-?comm\w*|\becom\b|e-?shop|web store|food.delivery|restaurant partners|onl?i?ne (?:store|shop)|\bpdp\b|\bmerch\b|web.?shop|sell \w+ online|storefront|marketplace|skus?\b|shopping|retail|product.(?:catalog|reviews|listings|descriptions?)|checkout|shopify|sellers?\b",
    "customer_support": r"cust(?:omer)?.support|customer (?:service|chats?|care|help)|(?<!sales )call transcripts?|after.call (?:work|notes?|summar\w*)|wrap.up|customer complaints?|support.(?:tickets?|agents?|widget|team|chats?\b|docs?|queue|desk)|zendesk|intercom|freshdesk|help ?desk|support (?:inbox|emails?)|help.?cent(?:er|re)|help articles|(?:call|contact).cent(?:er|re)",
    "hr": r"(?<![/\d$])hr\b|human resources|recruit|performance.reviews?|peer feedback|payroll|(?:employee|staff|hr) handbook|\bpto\b|job postings?|hiring|leave requests|candidates|r[eé]sum[eé]s|\bcvs\b|talent",
    "government": r"government|govt?\b|public records|records office|statistics (?:office|bureau|agency)|census|water (?:department|utility|authority)|city.owned|city (?:water|utility)|\bfoi\b|freedom of information|tax (?:office|authority)|revenue agency|public.sector|(?:government|federal|public|state) agency|benefits? (?:agency|office|portal)|land registry|registry office|caseworkers?|municipal|citizens?|city (?:council|hall)|council|county|social services|immigration|ministry|federal|civil serv|parliament",
    "science": r"science\b|scientific|biotech|\beln\b|scientists?|lab protocols?|grant applications?|research (?:papers?|group|lab|pdfs?)|arxiv|lit(?:erature)? reviews?|\bchem\b|lab notebooks|assay|biolog|biochem|chemi|physics|genomic|protein|astronom|climate research",
    "travel": r"travel|airline|ferr(?:y|ies)|crew (?:schedul\w*|rosters?)|cabin crew|hotel|(?<!in )(?<!in-)flights?|holiday|vacation|\btrips?\b|touris|itinerar|resort|cruise",
    "gaming": r"game|gaming|minecraft|roblox|gamers?|players? (?:base|community|support|talk|chat|notice|ask)|between players|party members|modd(?:ers?|ing)|npc|\brpg\b|quests?\b|\bmmo|esports",
    "marketing": r"marketing|marketers?\b|advertis|ad agency|ad copy|campaign|seo\b|social media",
    "security": r"security|appsec|devsecops|secops|\bsec (?:findings|team|issues|alerts)|threat|vulnerabilit|soc\b|malware|phishing|incident response|\bsiem\b|\bcves?\b|pen.?test|firewall|\bedr\b|\biocs?\b|cyber|attack.paths?|network configs",
}
GATEKEEPERS = re.compile(
    r"\b(?:legal|lawyers?|counsel|compliance|finance|procurement)(?: (?:team|folks|department|dept|people|colleagues))?"
    r" (?:review\w*|veto\w*|flagged|signed off|sign.?off|approv\w*|won'?t|says|said|passes|hates?|dislikes?|(?:do|does)n'?t like|insist\w*|requires?|demands?)"
    r"|\b(?:passes|pass|through|by) legal(?: review)?|\blegalities\b"
)
"""Lawyers, finance or procurement who approve or veto the choice are not what the deployment
is about ("legal vetoed the llama licence", "nothing else passes legal review", "finance
signed off"): left out of the subject."""
CODE_ALIASES = {"jp": "ja", "cn": "zh", "kr": "ko", "cz": "cs", "dk": "da", "se": "sv", "gr": "el"}
"""Country codes people write for a language code, read only where codes are ("jp->en")."""
LANGUAGE_CODES = "|".join(sorted(set(LANGUAGES.values()) | set(CODE_ALIASES)))
"""Language codes, read only between arrows ("EN -> FR"): "it" and "no" alone are words."""
LANGUAGE_NAMES = "|".join(sorted(LANGUAGES, key=len, reverse=True))
USE_CASE_CUES: dict[str, tuple[tuple[str, float], ...]] = {
    # (pattern, weight): the use case whose cues weigh most wins; a cue that is negated
    # ("not a summarizer", "translation isn't the job") counts against it. On a tie the
    # earlier use case is the likelier reading (and the conversation asks which).
    "code_generation": (
        (
            r"generat\w* code|writ\w* code|code.writ\w*|code.?gen\w*|coding agent|\bswe agent|software (?:engineering )?agent|unit tests?|tests included|pull requests?|\bprs?\b|\bsql\b|(?<!promo )(?<!video )(?<!sales )(?<!call )(?<!film )\bscripts?\b|writes? (?:the |some )?(?:python|javascript|typescript|java|golang|rust|sql|c\+\+|c#)\b|refactor|cod\w*gen\w*|test.?gen\w*|code review|\bdevin\b|claude.code|agent (?:that |to )?(?:writes?|writing|rewrit\w*|maintains?|fix\w*)|\w+ agent to rewrite|writ\w* (?:and maintain\w* )?(?:our |whole |the )?(?:\w+ ){0,2}(?:components?|pipelines?|scrapers?|rules in|modules?)\b|bug fix|fix(?:es)? bugs|fix\w* (?:failing |broken )?(?:ci|builds?|tests)|from (?:a |the )?tickets?|implement\w* features?|writes? (?:the |a |an |this |whole |entire |new |\w+ ){0,3}(?:module|function|class|program|service|test|tests|patch|file)(?:es|s)?\b|write.the.function|pair programmer|agent mode|code changes?\b|(?:turns?|converts?|transforms?) (?:\w+ ){0,3}(?:in)?to (?:\w+ ){0,2}(?:components?|code)\b|generat\w* (?:\w+ ){0,3}(?:components?|modules?|functions?|endpoints?|tests|codebases?|manifests|migrations)\b|\bports? (?:\w+ ){0,2}(?:to|into) \w+|implement\w* (?:this |the |a |each )?tickets?|test.generation|scaffold\w*|boilerplate|terraform|agentic|agent (?:workflows?|that (?:fixes|writes|opens|edits|codes|implements))|migrat\w* (?:\w+ ){0,3}code|rewrit\w* (?:\w+ ){0,4}code|\bpatch(?:es)?\b(?![\s-](?:notes?|dates?|days?))|writes? the fix|merge.request|(?:writes?|edits?|changes?) (?:and (?:edits?|writes?|tests?) )?(?:the )?code\b|code fix\w*|review\w* (?:\w+ ){0,2}(?:changes|commits|diffs)|before (?:they(?:\'re| are)|it\'?s|it is) merged|runs? the tests",
            3,
        ),
        (r"coding assistant", 2),
        (r"\bcode\b|\bcoding\b|programming", 1),
    ),
    "code_completion": (
        (
            r"auto.?comp\w*|code.?complet\w*|completions? in the (?:ide|editor)|(?:fills?|finish\w*|complet\w*|suggest\w*) (?:in )?the rest of (?:the |a |each )?(?:line|code|statement|function)",
            4,
        ),
        (
            r"\b(?:ide|vs ?code|editor|(?:in|inside) (?:their|the|our|your) editors|jetbrains|intellij|pycharm|webstorm|rider|xcode|android studio|eclipse|emacs|neovim|vim|jupyter|notebook)\b",
            2,
        ),
        (
            r"as (?:they|you|developers|devs|engineers|people|users) type|while (?:they|you|developers|devs|engineers) type|as.you.type|inline suggestion|tab.complet|fill.in.the.middle|\bfim\b|(?<!chat )copilot(?! chat)|next lines?|while (?:they|you|we|i) (?:are )?typ(?:e|ing)",
            3,
        ),
        (
            r"(?<!chat )(?<!mean )(?<!avg )(?<!average )\bcompletions?\b(?!\s*(?:~|\d|tok|length|len\b|size|p\d\d))|ghost.text|suggest\w* (?:the )?(?:next|code|lines)|code suggestions",
            3,
        ),
        # A "coding assistant" may complete, write or explain code: both code use cases
        # weigh it alike, and what else the words say decides (or the question asks).
        (r"coding assistant", 2),
        (r"\bcode\b|\bcoding\b|programming", 1),
    ),
    "chatbot": (
        (
            r"chat ?bot|chatbot|conversational|conversation|assistant|chats?\b|\bbot\b|help widget|help chat|copilot chat|\bfaq\b|talk (?:to|about|with)|help ?desk|support bot|virtual agent|companion|concierge|study buddy|\btutor\b|can (?:message|text) (?:it )?|turn by turn|answers? (?:users|customers|employees)|q&a bot|general q&a",
            2,
        ),
        (
            r"general (?:q&a|questions|purpose)|internal (?:chat )?assistant|chat assistant|ask (?:it )?anything",
            1,
        ),
    ),
    "rag_qa": (
        (
            r"\brag\b|retriev|grounded|knowledge.base|knowledge assistant|\bkb\b|internal docs|our docs|documentation|engineering docs|manuals?|wiki|confluence|sharepoint|notion|handbook|runbooks?|guidelines|regulations|rulebook|procedures|case.law|database|(?<!e-commerce )(?<!ecommerce )(?<!ecom )(?<!product )catalog(?:ue)?\b(?! (?:refresh|imports?|updates?|launch))|literature|\bindex\b|policies|policy documents|document search|enterprise search|search answers|answer engine|search(?:ing)? (?:over|across|through|our)|search box|search assistant|question.answering|q&a over|(?:q&a|questions) (?:over|on|from) |answer\w* (?:[\w']+ ){0,4}?(?:from|over|using|based on) (?:our|the|their|its)|with citations|ask.the.\w+|\bquery (?:our|the|their|internal|company) |docs? q&?a|looks? (?:\w+ )?up in|ask questions (?:across|over|about|on)|(?:answer|q&a|qa) bot over|cites? (?:the |its )?(?:passages|sources)|\bdocs? (?:chat)?bot\b|chat with (?:your|their|our) (?:docs|documents|files|filings|pdfs|data|notes)|search (?:my|your|their) |perguntas e respostas|preguntas y respuestas|fragen und antworten",
            3,
        ),
        (
            r"(?:questions?|ask) (?:about|over|on|from) (?:our|the|their|internal|company)|answers? questions (?:about|on|over)",
            2,
        ),
        (r"\bdocuments?\b|\bdocs\b|\bpdfs?\b|\bcorpus\b|\bq&a\b|reports", 1),
    ),
    "summarization": (
        (
            r"su+m+ar|\bsumm\b|condens|tl;?dr(?!\s*:)|digest|recap|boil\w* down|meeting notes|short notes|key points|show notes|main points|shortens?\b|shortening|(?:into|in) a few (?:bullet )?(?:lines|sentences|bullets|bullet points)\b",
            4,
        ),
        (r"abstracts?\b", 2),
        (r"^\W*su+m+ari[sz]", 1),  # a message that opens with the verb
    ),
    "translation": (
        (
            rf"trans(?:lat|alt)\w*|\btransl\b|\bmt (?:api|service|engine|backend|model|pipeline)|locali[sz](?:ation|e|ing)\b|interpret\w*|src.lang|tgt.lang|source language|target languages?|from \w+ (?:in)?to \w+|\b(?:{LANGUAGE_NAMES}) (?:in)?to (?:{LANGUAGE_NAMES})\b|\binto (?:{LANGUAGE_NAMES})\b|(?:need|want|get)s? (?:it|them|this|everything|all)(?: all)? (?:in|into) (?:{LANGUAGE_NAMES})\b|(?:go|goes|sent|published|posted) (?:out )?in (?:{LANGUAGE_NAMES}),? (?:(?:{LANGUAGE_NAMES}),? )*(?:and|or) (?:{LANGUAGE_NAMES})\b|\b(?:{LANGUAGE_CODES})\s*(?:<->|<>|->|→|↔|=>|>)\s*(?:{LANGUAGE_CODES})\b|\b(?:{LANGUAGE_NAMES}|eng)\s*(?:<->|<>|→|↔)\s*\w+",
            4,
        ),
        # A pair of languages said outright: "translation between chinese and english for our docs"
        (rf"\b(?:between|from) (?:{LANGUAGE_NAMES}) (?:and|to|into) (?:{LANGUAGE_NAMES})\b", 1),
    ),
    "batch_extraction": (
        (
            r"extract|pull\w* (?:out )?(?:fields|data|entities|\w+ codes)|pull\w* (?:[\w(),]+ ){1,6}?out of|pulled out|fields? (?:out )?of|fills? in (?:\w+ )?(?:fields|industry|columns)|enrich\w*|parse|parsing|invoices?|receipts?|classif|tags?\b|tagging|(?:ticket|request|email|inbox) triage|triage (?:of|job)|triages? (?:\w+ )?(?:tickets|requests|emails)|label(?:l?ing)\b|structured (?:data|json|output)|as json|\bjson\b|named entit|\bner\b|form data|dates and amounts|fill\w* in (?:the )?(?:spreadsheets?|boxes|fields|forms?|columns|tables?) from|from (?:the )?scanned",
            3,
        ),
        (
            r"batch|bulk|overnight|nightly|\bocr\b|pdf to text|digiti[sz]\w*|every night|offline|off.hours|backlog|millions of (?:documents|records|emails)",
            2,
        ),
    ),
    "content_generation": (
        (
            r"(?:prod(?:uct)?|property|listing|item|job|quest|course|hotel|room|real.estate) desc\w*|(?:meta|seo) (?:titles|descriptions)|text.generation|writing (?:tool|assistant)|copy assistant|taglines?|\bdraft(?:s|ing)? (?!of\b)(?:\w+ ){0,3}(?:sections?|proposals?|applications?|bulletins?|flyers?|posts?|letters?|emails?|replies|copy)\b|descriptions? written|(?:product|marketing|ad|sales|brand|web|website|email|notification|push|landing.page|seo) copy|ad copy|\bads\b|headlines?|blurbs?|brand voice|job.ads?|press releases?|blog posts?|newsletters?|worksheets|social.(?:media|posts?)|posts?\b for|copy.?writ|\blore (?:text|writ\w*|entries)|(?:generat\w*|writ\w*) (?:\w+ ){0,2}lore\b|creative writing|write (?:emails|copy|content)|(?:writ|generat|draft|produc|creat)\w* (?:\w+ ){0,2}(?:guides|postings?|push notifications?|notifications|listings|bios?|descriptions|titles|brochures|plans|course material)\b|writes? (?:new |the first )?(?:replies|quest|text|stories|\w+ emails?)|first.drafts?|drafts? of|(?:appeal|renewal|cover|sales|fundraising|personali[sz]ed|engagement|outreach|welcome) letters|whitepapers?|lesson plans?|listing copy|landing pages|devotionals|announcements|tweets|write it for me|guides emailed|exhibit labels|promo scripts|draft\w* (?:[\w-]+ ){0,3}(?:emails|posts|replies|ads|letters|them|reports|stories|articles)|generat\w* (?:[\w-]+ ){0,3}(?:tips|letters|commentar(?:y|ies)|texts)\b|commentaries|stor(?:y|ies) app|email drafting|(?:email|e-mail|letter|reply|post|newsletter) drafts|content.gen\w*|(?:story|stories|email|newsletter|copy|post|blog|article|desc\w*|description|caption|ad) gen\b|content (?:service|assistant|api)|generate content|generat\w* (?:marketing|\w+ emails|npc|push|\w+ copy)|generat\w* (?:\w+ ){0,2}(?:exercises|sentences|quizzes|lessons|examples|dialogue|questions|explanations)|(?:post|copy|ad|headline|caption|story|description|text|content|email|letter|slogan|article)s?.generator|personali[sz]ed (?:\w+ )?emails|(?:writ\w*|generat\w*|tell\w*) (?:\w+ ){0,2}stor(?:y|ies)|stor(?:y|ies).generation|short stories|slogans|captions|quest text|barks|npc dialogue|rewrite this|rewrite (?:button|feature)|make it sound|explanations of",
            3,
        ),
        (r"articles?\b|written from", 2),
    ),
    "reasoning": (
        (
            r"step.by.step|re+a?s+oning\b|reasons? through|math(?:s|ematic\w*)? (?:problems|proofs|olympiad|solver)|maths? solver|competition math|hard.maths?|olympiad|proofs?\b|theorem|logic puzzles?|puzzles|chain.of.thought|complex (?:problems|analysis|planning)|(?:constraint|scheduling|optimi[sz]ation) problems|agentic planning|think(?:s|ing)? (?:hard|through|thru|at length)|multi.step|\bo1\b|\bo3\b|problem solv\w*|\bsolver\b|puzzle\w*|\bimo\b|competition.level|combinatorics|thinking model|thinks? for (?:a |an |up to )?(?:minute|while|long)|chains? of thought|long.?cot|\bcot\b|hint system",
            3,
        ),
        (r"\breason(?:s|ing)? (?:over|about|through)\b", 2),
    ),
}

PRIORITY_WORDS = {
    "latency": r"latency|speed|fast|quick|snappy|instant\w*|real.?time|responsive|lightning|slow",
    "cost": r"costs?|price|pricing|cheap\w*|che+p|bill|money|dollars?",
    "accuracy": r"accura\w*|accurcy|quality|qualty|correct\w*|right|precis\w*",
}
"""The words of each thing that can matter most."""
_ANY = "|".join(PRIORITY_WORDS.values())
IRRELEVANT = (
    rf"(?:{_ANY})\w*\s+(?:\w+\s+){{0,3}}?(?:doesn'?t|does not|don'?t|do not|isn'?t|is not|not)\s+"
    rf"(?:\w+\s+)?(?:matter|needed|important|a concern|critical|an issue)\w*|"
    rf"(?:{_ANY})\w* (?:is|are) (?:irrelevant|secondary|not a concern|no concern)|"
    rf"(?:don'?t|do not|nobody|no one|doesn'?t)\s+(?:really\s+)?cares?\s+(?:\w+\s+)?about\s+(?:the\s+)?(?:{_ANY})\w*|"
    rf"(?:doesn'?t|does not|don'?t|dont|do not|no) (?:need|have|has)(?: to be| it(?: to be)?) (?:\w+ )?(?:{_ANY})\w*|"
    rf"(?:{_ANY})\w* (?:isn'?t|is not|aren'?t) (?:the point|a priority|(?:\w+ )?either)|"
    rf"(?:aren'?t|isn'?t|\bnot|never|nobody \w+) (?:\w+ ){{0,3}}?(?:{_ANY})\w*|"
    r"fine if it'?s slow|(?:dont|don'?t) care how long|how(?:ever)? long it takes|can be slow|"
    r"slow is (?:fine|ok)"
)
"""What is said not to matter: set aside before reading what does."""
_SAID_TO_MATTER = (
    r"(?:\s*[:=-]\s*(?:the\s+)?(?:highest|top|first|main|number one)\s+priority|"  # "Quality: highest priority"
    r"\s+(?:is\s+)?(?:the\s+|our\s+)?(?:top\s+|main\s+|#1\s+)?prio\b|"  # "cost prio", "latency is the prio"
    r"\s+(?:is|are)\s+(?:\w+\s+)?(?:more important|important more)\s+than|"  # "quality is more important than speed"
    r"\s+(?:is\s+)?the\s+(?:main\s+|key\s+)?driver\b|"  # "cost is the driver here"
    r"\s+(?:is|are)\s+(?:the\s+)?(?:priority number one|number one priority)|"
    r"\s+(?:\w+\s+){0,4}?(?:matters?|is what|are what|first|above (?:all|everything)|is (?:key|critical|everything|"
    r"king|paramount|(?:the|our) (?:(?:only|main|top|most important) )?(?:thing|concern|priority|constraint))|does\b|"
    r"matters? (?:way |much |a lot |far )?more|over\b|>|(?:is|does)\s*(?:[.,;]|$)))"
)


def _said_to_matter(words: str) -> str:
    """One of `words` said to matter most: "latency is key", "we care about cost", "what
    matters is quality"."""
    return (
        rf"(?:{words})\w*{_SAID_TO_MATTER}|care (?:\w+ ){{0,3}}about (?:\w+ ){{0,2}}(?:{words})|"
        rf"nothing (?:else )?matters (?:but|except|besides) (?:the )?(?:{words})|"
        rf"make (?:the )?(?:{words})\w* (?:the |our )?(?:top |main |first )?priority|"
        rf"what (?:really )?matters(?: most)? (?:is|are) (?:the )?(?:\w+ )?(?:{words})"
    )


PRIORITY_CUES: dict[str, str] = {
    "cost": r"cost (?:is what matters|first)|che+a?pe?\b|cheapest|cheapness|lowest cost|low cost|cost matters most|cost is (?:the )?(?:top|main|most important|key|only)|(?:cost|price|money) is the (?:only|main) thing|minimi[sz]e (?:the )?cost|save money|tight budget|cost.sensitive|budget is (?:the )?(?:top|main) (?:concern|priority)|cost.effective|as little as (?:we )?(?:possibly )?(?:can|possible)|shoe.?string|frugal|(?:money|budget|funds?|cash)(?:'s| is| are) (?:tight|limited|short|scarce)|(?:keep|keeping) (?:the )?(?:bill|costs?|spend) (?:low|down)|per dollar|\$\$|"
    + _said_to_matter(PRIORITY_WORDS["cost"]),
    "latency": r"lowest latency|low latency|as fast as pos|speed (?:is|matters)|latency (?:is|matters) (?:everything|most|critical|the top|what matters|key)|latency is what|fastest|snappy|latency.critical|(?:latency|speed) first|instant(?:ly|aneous)?\b|real.?time|(?:be|is|feel|feels|very|really|super) fast|fast (?:pls|please|plz)\b|quick quick|needs? to b?e? ?(?:quick|fast)\b|lightning|they wait on it|right away|immediately|(?:shouldn'?t|should not|can'?t|cannot|mustn'?t|don'?t) (?:be )?(?:kept )?wait|(?:no|never|without (?:any )?)lag\b|(?:n'?t|never) (?:notice|feel|see) (?:any )?lag\b|"
    + _said_to_matter(PRIORITY_WORDS["latency"]),
    "accuracy": r"(?:accuracy|quality) first|can'?t afford (?:\w+ )?(?:wrong|mistakes|errors|hallucinat)|(?:want|need)s? it (?:to be )?(?:right|accurate|correct)|accu\w*cy|best (?:possible )?(?:\w+ )?(?:answers|quality|model)|highest quality|quality (?:is|matters) (?:most|everything|the top|key|critical)|quality above all|most capable|smartest|quality first|most (?:correct|accurate)|(?:must|has to|have to|need to|needs to|should) be (?:\w+ )?(?:right|correct|accurate)|"
    + _said_to_matter(PRIORITY_WORDS["accuracy"]),
    "balanced": r"\bbalanced\b|balance (?:of|between)|trade.?off|middle ground|reasonable (?:cost|mix)|both cost and",
}

PEAK = r"\bpe[ae]k|jumps? (?:up )?to|\brush\b|season\b|busy (?:period|time|days?)|\bspik\w* (?:to|of|at)|at (?:the )?(?:busiest|peak)|burst(?:s|ing)? (?:to|of)|up to|maximum|max\b|\bhighs? of|at (?:the )?(?:very )?most\b"
STEADY = r"steady|baseline|normally|usually|typical(?:ly)?\b|average|on average|off.peak|most of the (?:day|time)|regular|normal day|day.to.day|otherwise|the rest of the (?:year|time|day|week)|off.season|quiet"
COUNTED = r"(?:[a-z][\w'-]*(?:\s+|(?=/))){0,3}?"
"""What a rate counts, in up to three words ("pull requests", "customer reviews", "of them"):
each is one request, unless it is people or tokens (`NOT_COUNTED`)."""
NOT_COUNTED = rf"\b(?:{PEOPLE_NOUN}|tokens?|tok|gpus?|words?|dollars|usd|bucks|ms|hours?|minutes?|seconds?|days?)\b"
HEDGE = re.compile(
    r"(?:,|\.\.\.|…)\s*(?:i dunno|i don'?t know|i guess|i think|i'?d say|i suppose|you know)"
    r"(?:\s*(?:,|\.\.\.|…))?\s+",
    re.IGNORECASE,
)
"""A hedge set off inside a sentence: "commented within, I dunno, a couple of minutes",
"start within... I'd say half a second". Taken out, its sentence reads as one clause."""
CLAUSE = re.compile(
    r"\.(?=\s|$)|[;!?\n|]|//|,\s|(?<!anything )(?<!everything )(?<!all )(?<!model )\bbut\b|\bwhile\b|"
    r"\band\s+(?=no\b|not\b)"
)
"""Where a clause ends: negations and units do not reach across it."""
