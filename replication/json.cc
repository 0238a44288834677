#include "replication/json.h"

#include <cctype>
#include <cstdio>

#include "replication/errc.h"

namespace sluice::replication::json {

const array* value::as_array() const {
    auto p = std::get_if<std::shared_ptr<array>>(&v);
    return p ? p->get() : nullptr;
}

const object* value::as_object() const {
    auto p = std::get_if<std::shared_ptr<object>>(&v);
    return p ? p->get() : nullptr;
}

const value* value::get(const std::string& key) const {
    const object* o = as_object();
    if (o == nullptr) return nullptr;
    auto it = o->find(key);
    return it == o->end() ? nullptr : &it->second;
}

namespace {

class parser {
public:
    explicit parser(std::string_view s) : _s(s) {}

    result<value> document() {
        auto v = parse_value(0);
        if (!v) return v;
        skip_space();
        if (_pos != _s.size()) return bad("trailing bytes");
        return v;
    }

private:
    error bad(const char* what) const {
        return error(errc::store_corrupt,
                     std::string("JSON: ") + what + " at byte " + std::to_string(_pos));
    }
    void skip_space() {
        while (_pos < _s.size() && std::isspace(static_cast<unsigned char>(_s[_pos]))) ++_pos;
    }
    bool eat(char c) {
        skip_space();
        if (_pos < _s.size() && _s[_pos] == c) {
            ++_pos;
            return true;
        }
        return false;
    }
    bool literal(std::string_view word) {
        if (_s.substr(_pos, word.size()) != word) return false;
        _pos += word.size();
        return true;
    }

    result<value> parse_value(int depth) {
        if (depth > max_depth) return bad("nesting too deep");
        skip_space();
        if (_pos >= _s.size()) return bad("unexpected end");
        char c = _s[_pos];
        if (c == '{') return parse_object(depth);
        if (c == '[') return parse_array(depth);
        if (c == '"') {
            auto s = parse_string();
            if (!s) return s.error();
            return value{std::move(*s)};
        }
        if (literal("null")) return value{nullptr};
        if (literal("true")) return value{true};
        if (literal("false")) return value{false};
        return parse_int();
    }

    result<value> parse_int() {
        size_t start = _pos;
        if (_pos < _s.size() && _s[_pos] == '-') ++_pos;
        int64_t n = 0;
        size_t digits = 0;
        while (_pos < _s.size() && std::isdigit(static_cast<unsigned char>(_s[_pos]))) {
            if (++digits > 18) return bad("number too long");
            n = n * 10 + (_s[_pos++] - '0');
        }
        if (digits == 0) return bad("expected a value");
        if (_pos < _s.size() && (_s[_pos] == '.' || _s[_pos] == 'e' || _s[_pos] == 'E')) {
            return bad("only integers are expected");
        }
        return value{_s[start] == '-' ? -n : n};
    }

    result<std::string> parse_string() {
        ++_pos;  // the opening quote
        std::string out;
        while (_pos < _s.size()) {
            char c = _s[_pos++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) return bad("control character in string");
            if (c != '\\') {
                out.push_back(c);
                continue;
            }
            if (_pos >= _s.size()) break;
            char e = _s[_pos++];
            switch (e) {
                case '"': case '\\': case '/': out.push_back(e); break;
                case 'b': out.push_back('\b'); break;
                case 'f': out.push_back('\f'); break;
                case 'n': out.push_back('\n'); break;
                case 'r': out.push_back('\r'); break;
                case 't': out.push_back('\t'); break;
                case 'u': {
                    if (_pos + 4 > _s.size()) return bad("short \\u escape");
                    unsigned code = 0;
                    for (int i = 0; i < 4; ++i) {
                        char h = _s[_pos++];
                        if (!std::isxdigit(static_cast<unsigned char>(h))) return bad("bad \\u");
                        code = code * 16 + static_cast<unsigned>(std::isdigit(h) ? h - '0'
                                                                 : (std::tolower(h) - 'a' + 10));
                    }
                    if (code >= 0x80) return bad("non-ASCII \\u escape");
                    out.push_back(static_cast<char>(code));
                    break;
                }
                default: return bad("bad escape");
            }
        }
        return bad("unterminated string");
    }

    result<value> parse_array(int depth) {
        ++_pos;
        auto arr = std::make_shared<array>();
        if (eat(']')) return value{arr};
        for (;;) {
            auto v = parse_value(depth + 1);
            if (!v) return v;
            arr->push_back(std::move(*v));
            if (eat(']')) return value{arr};
            if (!eat(',')) return bad("expected , or ]");
        }
    }

    result<value> parse_object(int depth) {
        ++_pos;
        auto obj = std::make_shared<object>();
        if (eat('}')) return value{obj};
        for (;;) {
            skip_space();
            if (_pos >= _s.size() || _s[_pos] != '"') return bad("expected a member name");
            auto key = parse_string();
            if (!key) return key.error();
            if (!eat(':')) return bad("expected :");
            auto v = parse_value(depth + 1);
            if (!v) return v;
            (*obj)[std::move(*key)] = std::move(*v);
            if (eat('}')) return value{obj};
            if (!eat(',')) return bad("expected , or }");
        }
    }

    std::string_view _s;
    size_t _pos = 0;
};

}  // namespace

result<value> parse(std::string_view text) {
    if (text.size() > max_bytes) {
        return error(errc::store_corrupt, "JSON: " + std::to_string(text.size()) + " bytes");
    }
    return parser(text).document();
}

std::string quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(c);
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
            out += buf;
        } else {
            out.push_back(c);
        }
    }
    return out + "\"";
}

}  // namespace sluice::replication::json
