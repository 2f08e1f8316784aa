/*
 * http_template.c — http_template_path(), the public form of the path
 * templater (the templater itself is in http_template.h, which the request
 * parser runs inline; see http_impl.h for the layout of the delimiter).
 */
#include "http_template.h"

size_t http_template_path(const char *path, size_t len, char *out,
			  size_t outsz)
{
	const unsigned char *s = (const unsigned char *)path;
	struct http_tpl_state t;
	size_t i;

	if (outsz == 0)
		return 0;
	tpl_begin(&t, 0);
	/*
	 * A query string is never part of a path, and a NUL cannot be part of
	 * the C string returned: the path ends at the first '?' or NUL.
	 */
	for (i = 0; i < len && s[i] != '?' && s[i] != '\0'; i++) {
		if (i == HTTP_TARGET_MAX) {
			tpl_cut(&t, out, outsz - 1);
			break;
		}
		tpl_byte(&t, out, outsz - 1, s[i]);
	}
	return tpl_finish(&t, out, outsz - 1);
}

