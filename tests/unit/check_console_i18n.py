#!/usr/bin/env python3
"""Console text and hooks stay consistent (src/console/).

- every string key the page uses (t('key'), label/confirm keys, data-i18n*)
  is in each i18n file, and every key of en.json is used;
- the three i18n files have the same keys;
- every '#id' the scripts (app.js and the modules next to it) name, in
  their code or app.js's test-hook comment, exists in index.html.
usage: check_console_i18n.py SRC/console
"""
import glob
import json
import os
import re
import sys


def main():
    if len(sys.argv) != 2:
        print('usage: check_console_i18n.py CONSOLE_DIR', file=sys.stderr)
        return 2
    d = sys.argv[1]
    app = open(os.path.join(d, 'app.js'), encoding='utf-8').read()
    js = app
    for name in sorted(glob.glob(os.path.join(d, '*.js'))):
        if os.path.basename(name) != 'app.js':
            with open(name, encoding='utf-8') as f:
                js += '\n' + f.read()
    html = open(os.path.join(d, 'index.html'), encoding='utf-8').read()
    errors = []

    langs = {}
    for lang in ('en', 'fr', 'ja'):
        with open(os.path.join(d, 'i18n', lang + '.json'), encoding='utf-8') as f:
            data = json.load(f)
        if data.get('lang') != lang:
            errors.append('%s.json: "lang" is %r' % (lang, data.get('lang')))
        langs[lang] = data.get('strings', {})
    en = set(langs['en'])
    for lang in ('fr', 'ja'):
        if set(langs[lang]) != en:
            errors.append('%s.json: keys differ from en.json: missing %s, extra %s' % (
                lang, sorted(en - set(langs[lang])), sorted(set(langs[lang]) - en)))

    used = set(re.findall(r"\bt\('([a-z0-9_]+)'", js))
    used |= set(re.findall(r"\b(?:label|confirm): '([a-z0-9_]+)'", js))
    used |= set(re.findall(r"listOrEmpty\([^,]+, '([a-z0-9_]+)'", js))
    used |= set(re.findall(r'data-i18n(?:-aria)?="([a-z0-9_]+)"', html))
    if len(used) < 50:
        errors.append('only %d keys found in the scripts and index.html: the scan is broken' % len(used))
    for key in sorted(used - en):
        errors.append('"%s" is used by the page but not in en.json' % key)
    for key in sorted(en - used):
        errors.append('"%s" is in en.json but the page never uses it' % key)

    ids = set(re.findall(r'\bid="([a-z0-9-]+)"', html))
    named = set(re.findall(r"'#([a-z][a-z0-9-]*)", js))
    header = app.split('*/', 1)[0]
    named |= set(re.findall(r'#([a-z][a-z0-9-]*)', header))
    named -= {'monitoring', 'control'}  # URL hashes in the comment, not ids
    named = {i for i in named if not i.endswith('-')}  # '#tab-' + name
    for tab in re.findall(r"const TABS = \[([^\]]*)\]", js)[0].replace("'", '').split(','):
        named.add('tab-' + tab.strip())
    for i in sorted(named - ids):
        errors.append('the scripts name #%s, which index.html does not have' % i)

    for e in errors:
        print('check_console_i18n: ' + e, file=sys.stderr)
    print('%d keys, %d used, %d ids checked' % (len(en), len(used), len(named)))
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
