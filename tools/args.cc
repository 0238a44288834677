#include "tools/args.h"

#include <charconv>
#include <cstdlib>

namespace sluice::tools {

result<args> args::parse(int argc, char** argv, const std::vector<option_spec>& specs) {
    args out;
    auto find = [&](std::string_view name) -> const option_spec* {
        for (const auto& s : specs) {
            if (s.name == name) return &s;
        }
        return nullptr;
    };
    bool only_positional = false;
    for (int i = 0; i < argc; ++i) {
        std::string a = argv[i];
        if (only_positional || a.size() < 2 || a.rfind("--", 0) != 0) {
            out._positional.push_back(a);
            continue;
        }
        if (a == "--") {
            only_positional = true;
            continue;
        }
        std::string name = a.substr(2);
        std::optional<std::string> value;
        if (auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name.resize(eq);
        }
        const option_spec* spec = find(name);
        if (spec == nullptr) return error(errc::bad_argument, "unknown option --" + name);
        if (spec->takes_value && !value) {
            if (i + 1 >= argc) return error(errc::bad_argument, "--" + name + " needs a value");
            value = argv[++i];
        }
        if (!spec->takes_value && value) {
            return error(errc::bad_argument, "--" + name + " takes no value");
        }
        auto& slot = out._values[name];
        if (!spec->repeatable) slot.clear();
        slot.push_back(value.value_or("true"));
    }
    return out;
}

std::optional<std::string> args::get(const std::string& name) const {
    auto it = _values.find(name);
    if (it == _values.end() || it->second.empty()) return std::nullopt;
    return it->second.back();
}

std::string args::get_or(const std::string& name, std::string fallback) const {
    auto v = get(name);
    return v ? *v : std::move(fallback);
}

std::vector<std::string> args::all(const std::string& name) const {
    auto it = _values.find(name);
    return it == _values.end() ? std::vector<std::string>{} : it->second;
}

result<int64_t> parse_scaled(std::string_view s) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p == s.data()) {
        return error(errc::bad_argument, "'" + std::string(s) + "' is not a number");
    }
    std::string_view suffix(p, static_cast<size_t>(s.data() + s.size() - p));
    int64_t scale = 1;
    if (suffix.empty()) {
        scale = 1;
    } else if (suffix == "k") {
        scale = 1000;
    } else if (suffix == "K" || suffix == "KiB" || suffix == "KB") {
        scale = 1024;
    } else if (suffix == "M" || suffix == "MiB" || suffix == "MB") {
        scale = int64_t{1} << 20;
    } else if (suffix == "G" || suffix == "GiB" || suffix == "GB") {
        scale = int64_t{1} << 30;
    } else if (suffix == "m") {
        scale = 1000000;
    } else {
        return error(errc::bad_argument, "unknown suffix in '" + std::string(s) + "'");
    }
    return v * scale;
}

result<int64_t> args::integer(const std::string& name, int64_t fallback, int64_t min,
                              int64_t max) const {
    auto v = get(name);
    if (!v) return fallback;
    auto n = parse_scaled(*v);
    if (!n) return error(errc::bad_argument, "--" + name + ": " + n.error().detail());
    if (*n < min || *n > max) {
        return error(errc::bad_argument, "--" + name + " must be within [" + std::to_string(min) +
                                             ", " + std::to_string(max) + "]");
    }
    return *n;
}

result<double> args::number(const std::string& name, double fallback) const {
    auto v = get(name);
    if (!v) return fallback;
    char* end = nullptr;
    double d = std::strtod(v->c_str(), &end);
    if (end == v->c_str() || *end != '\0') {
        return error(errc::bad_argument, "--" + name + ": '" + *v + "' is not a number");
    }
    return d;
}

result<std::pair<std::string, std::string>> parse_key_value(std::string_view s) {
    auto eq = s.find('=');
    if (eq == std::string_view::npos || eq == 0) {
        return error(errc::bad_argument, "expected key=value, got '" + std::string(s) + "'");
    }
    return std::pair{std::string(s.substr(0, eq)), std::string(s.substr(eq + 1))};
}

result<int16_t> parse_acks(std::string_view s) {
    if (s == "all" || s == "-1") return int16_t{-1};
    if (s == "0" || s == "1") return static_cast<int16_t>(s[0] - '0');
    return error(errc::bad_argument, "--acks must be 0, 1 or all");
}

result<model::compression> parse_compression(std::string_view s) {
    static const std::pair<std::string_view, model::compression> codecs[] = {
        {"none", model::compression::none},     {"gzip", model::compression::gzip},
        {"snappy", model::compression::snappy}, {"lz4", model::compression::lz4},
        {"zstd", model::compression::zstd}};
    for (const auto& [name, c] : codecs) {
        if (s == name) return c;
    }
    return error(errc::bad_argument, "unknown --compression '" + std::string(s) + "'");
}

}  // namespace sluice::tools
