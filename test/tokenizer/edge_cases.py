"""Hand-written texts where tokenizers go wrong (gen_corpus.py adds them to
the corpus). Written for this test; public domain."""

# Contractions, apostrophes and case.
ENGLISH = [
    "I'm sure you're right: it's late, they've gone, we'll stay, he'd know.",
    "DON'T SHOUT. I'M HERE. YOU'RE LATE. IT'S FINE. WE'LL SEE. THEY'D GO.",
    "You'Re, It'S, We'Ll, They'Ve, I'M, He'D: odd cases of contractions.",
    "O'Neil's dog's bone; the boss's boss'; rock 'n' roll; '90s; 'tis.",
    "Curly quotes: \u2018single\u2019, \u201cdouble\u201d, it\u2019s, don\u2019t.",
    "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!",
    "Hello, how are you?",
    "e.g. i.e. etc. Mr. Dr. St. a.m. p.m. U.S.A. Ph.D.",
    "What?! No... Really?? Yes!!! (Maybe.) [Perhaps] {Certainly} <Never>",
    "Hyphen-ated words, en\u2013dash, em\u2014dash, minus \u2212 sign.",
]

CODE = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "int main(int argc, char **argv) {\n\tfor (int i = 0; i < argc; ++i)\n\t\tprintf(\"%s\\n\", argv[i]);\n\treturn 0;\n}\n",
    "fn main() -> Result<(), Box<dyn Error>> {\r\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\r\n    Ok(())\r\n}\r\n",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC;",
    "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\\u00e9\"}}",
    "#include <vector>\n#define MAX(a,b) ((a)>(b)?(a):(b))\ntemplate <typename T> T id(T x) { return x; }\n",
    "    indented four\n        indented eight\n\tone tab\n\t\ttwo tabs\n  \t mixed\n",
    "x+=1;y-=2;z*=3;w/=4;a%=5;b<<=6;c>>=7;d&=8;e|=9;f^=10;g&&h||!i;",
    "https://example.org/path/to/page?query=a%20b&x=1#frag user@example.com",
    "| col | col |\n|-----|-----|\n| `a` | **b** |\n\n> quote\n\n- item\n  - sub\n",
    "trailing spaces   \nand tabs\t\t\nend",
]

CJK = [
    "\u4eca\u5929\u5929\u6c14\u5f88\u597d\uff0c\u6211\u4eec\u53bb\u516c\u56ed\u6563\u6b65\u5427\u3002\u4f60\u89c9\u5f97\u600e\u4e48\u6837\uff1f",
    "\u4e2d\u6587\u3001\u65e5\u672c\u8a9e\u3001\ud55c\uad6d\uc5b4\uff1a\u4e09\u79cd\u8bed\u8a00\u6df7\u5728\u4e00\u8d77\u3002",
    "\u3053\u308c\u306f\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3067\u3059\u3002\u30ab\u30bf\u30ab\u30ca\u3082\u3072\u3089\u304c\u306a\u3082\u6f22\u5b57\u3082\u3042\u308a\u307e\u3059\u3002",
    "\u300c\u3053\u3093\u306b\u3061\u306f\u300d\u3068\u5f7c\u5973\u306f\u8a00\u3063\u305f\u3002\u300e\u672c\u300f\u3092\u8aad\u3080\u3002",
    "\ud55c\uad6d\uc5b4 \ubb38\uc7a5\uc785\ub2c8\ub2e4. \uc548\ub155\ud558\uc138\uc694? \ub9cc\ub098\uc11c \ubc18\uac11\uc2b5\ub2c8\ub2e4!",
    "\uff11\uff12\uff13\uff14\uff15 \uff21\uff22\uff23 \uff41\uff42\uff43 \uff08\u5168\u89d2\uff09",
    "\u5728 2024 \u5e74\uff0cGPT-4 \u548c Llama 3 \u90fd\u652f\u6301\u4e2d\u6587\u3002",
    "\u6c49\u5b57\u6c49\u5b57\u6c49\u5b57\u6c49\u5b57\u6c49\u5b57\u6c49\u5b57\u6c49\u5b57\u6c49\u5b57",
]

EMOJI = [
    "I love it \U0001F600\U0001F603\U0001F604! Thumbs up \U0001F44D\U0001F3FD and \u2764\ufe0f.",
    "Family: \U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466, flags: \U0001F1EA\U0001F1F8\U0001F1EF\U0001F1F5\U0001F1FA\U0001F1F8",
    "Keycaps 1\ufe0f\u20e3 #\ufe0f\u20e3, rainbow flag \U0001F3F3\ufe0f\u200d\U0001F308, \U0001F9D1\u200d\U0001F4BB coding.",
    "\U0001F680\U0001F680\U0001F680 to the moon \U0001F315 \u2728\u2728",
    "\u263A \u2639 \u2600 \u2601 \u2602 \u2603 \u2604 \u2605 \u2606 \u260E",
]

MARKS = [
    "Cafe\u0301 vs Caf\u00e9, n\u0303 vs \u00f1, A\u030a vs \u00c5 vs \u212b.",
    "Z\u0351\u036b\u0343a\u0352l\u0351g\u0350o\u035b t\u0364e\u0368x\u0367t\u0365",
    "\u1100\u1161\u11a8 \u1102\u1165 (decomposed Hangul) vs \uac01 \ub108",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e, \u0939\u093f\u0928\u094d\u0926\u0940 \u092d\u093e\u0937\u093e",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645. \u0627\u0644\u0644\u064f\u0651\u063a\u064e\u0629\u064f \u0627\u0644\u0639\u064e\u0631\u064e\u0628\u0650\u064a\u0651\u064e\u0629",
    "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd \u05e2\u05d5\u05b9\u05dc\u05b8\u05dd",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22",
    "Ti\u1ebfng Vi\u1ec7t c\u00f3 nhi\u1ec1u d\u1ea5u: \u1eaf \u1eb1 \u1eb3 \u1eb5 \u1eb7 \u1ebf \u1ec1",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u0401\u0436 \u0438 \u0439\u043e\u0433\u0443\u0440\u0442. \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u03b3\u03c1\u03ac\u03bc\u03bc\u03b1\u03c4\u03b1.",
    "\ufb01 \ufb02 \ufb00 \u2126 \u212a \u00b5 \u03bc \u1e9e \u00df \u0130 \u0131",
]

WHITESPACE = [
    "a  b   c    d     e",
    "   leading spaces",
    "trailing spaces   ",
    "\n\n\nthree newlines first",
    "tabs\there\t\tand\t\t\tthere",
    " \n \n \n",
    "windows\r\nline\r\nendings\r\n\r\n",
    "old\rmac\rendings",
    "no\u00a0break\u00a0space and\u202fnarrow\u2007figure",
    "ideographic\u3000space\u3000\u3000here",
    "next\u0085line and line\u2028separator and paragraph\u2029separator",
    "zero\u200bwidth\u200cnon\u200djoiner\u2060word",
    "byte\ufefforder mark\ufeff",
    "mongolian\u180evowel separator",
    "em\u2003space en\u2002space thin\u2009space hair\u200aspace",
    "\t \t \t",
    "\x0b vertical tab \x0c form feed \x1c \x1d \x1e \x1f separators",
    "",
    " ",
    "\n",
]

DIGITS = [
    "1234567890 12345 123 12 1",
    "3.14159265358979 2.71828 1e-10 6.022e23",
    "1,000,000 and 1.000.000 and 1 000 000",
    "0x1F 0b1010 0o17 #FF00FF",
    "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669 (Arabic-Indic)",
    "\u0967\u0968\u0969 (Devanagari) \u09e7\u09e8\u09e9 (Bengali)",
    "x\u00b2 + y\u00b3 = z\u00b9, \u00bd \u00bc \u00be, \u2160 \u2161 \u216b, \u2460 \u2461",
    "2024-01-31T12:34:56Z, 12:00, 99.9%, $1,234.56, \u20ac5, \u00a57",
    "phone +1 (555) 123-4567, ISBN 978-3-16-148410-0",
]

SPECIAL = [
    "<s>",
    "</s>",
    "<unk>",
    "<s>Hello</s>",
    "<s><s> <s>  </s></s>",
    "a<s>b</s>c",
    "<|begin_of_text|>Hello<|end_of_text|>",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
    "<think>\nreasoning\n</think>\n\nanswer",
    "<|im_start|>  user\n  hi  \n <|im_end|>\n\n<|im_start|>\tassistant <|im_end|>",
    "x <s> y  </s>\t<|begin_of_text|> \u3000 <|eot_id|>",
    "<tool_call>{\"name\": \"f\"}</tool_call>",
    "<|im_sta <|begin_of_tex <s <|endoftext| partial tokens",
    "<<s>> <</s>> <|<|im_end|>|>",
    "<|reserved_special_token_0|><|reserved_special_token_250|>",
    "<|endoftext|><|endoftext|>",
    "\u2581literal\u2581metaspace\u2581",
    "<0x0A> <0xFF> looks like a byte token",
]


def cases():
    """(category, text) pairs."""
    for name, texts in [("english", ENGLISH), ("code", CODE), ("cjk", CJK),
                        ("emoji", EMOJI), ("marks", MARKS),
                        ("whitespace", WHITESPACE), ("digits", DIGITS),
                        ("special", SPECIAL)]:
        for t in texts:
            yield name, t
