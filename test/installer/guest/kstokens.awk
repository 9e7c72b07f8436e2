# Split one kickstart line into words the way pykickstart does (shlex, POSIX
# mode, comments on): whitespace separates words; '...' is literal; inside
# "..." a backslash escapes \ " $ `; outside quotes a backslash escapes the
# next character; an unquoted # ends the line (even inside a word). One word per output
# line. Nothing is expanded or executed. Exit status 2: unterminated quote.
{
	n = length($0); word = ""; inword = 0; q = ""
	for (i = 1; i <= n; i++) {
		c = substr($0, i, 1)
		if (q == "'") {
			if (c == "'") q = ""; else word = word c
		} else if (q == "\"") {
			if (c == "\"") q = ""
			else if (c == "\\" && i < n && index("\\\"$`", substr($0, i + 1, 1))) { i++; word = word substr($0, i, 1) }
			else word = word c
		} else if (c == " " || c == "\t" || c == "\r") {
			if (inword) { print word; word = ""; inword = 0 }
		} else if (c == "#") {
			break
		} else {
			inword = 1
			if (c == "'" || c == "\"") q = c
			else if (c == "\\" && i < n) { i++; word = word substr($0, i, 1) }
			else word = word c
		}
	}
	if (q != "") exit 2
	if (inword) print word
}
