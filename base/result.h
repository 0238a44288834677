#pragma once
// Errors are values. Every module declares an `errc` enum (in its own `errc.h`) registered as a
// std::error_code category; functions return `result<T>`, which holds either a T or an `error`
// (a code plus a human-readable detail such as a file name and position). Kafka's int16 error
// codes are produced only at the broker boundary.

#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "base/assert.h"

namespace sluice {

class error {
public:
    error() = default;
    error(std::error_code code, std::string detail = {})
        : _code(code), _detail(std::move(detail)) {}
    template <class E, std::enable_if_t<std::is_error_code_enum_v<E>, int> = 0>
    error(E e, std::string detail = {}) : _code(make_error_code(e)), _detail(std::move(detail)) {}

    const std::error_code& code() const { return _code; }
    const std::string& detail() const { return _detail; }
    // "category: message (detail)", for logs and CLI output.
    std::string describe() const;

    template <class E, std::enable_if_t<std::is_error_code_enum_v<E>, int> = 0>
    bool is(E e) const {
        return _code == make_error_code(e);
    }

private:
    std::error_code _code;
    std::string _detail;
};

// An errno value as an error (system category).
inline error errno_error(int err, std::string detail = {}) {
    return error(std::error_code(err, std::system_category()), std::move(detail));
}

template <class T>
class [[nodiscard]] result {
public:
    result(T value) : _v(std::in_place_index<0>, std::move(value)) {}
    result(sluice::error e) : _v(std::in_place_index<1>, std::move(e)) {}
    template <class E, std::enable_if_t<std::is_error_code_enum_v<E>, int> = 0>
    result(E e, std::string detail = {})
        : _v(std::in_place_index<1>, sluice::error(e, std::move(detail))) {}

    bool has_value() const { return _v.index() == 0; }
    explicit operator bool() const { return has_value(); }

    T& value() & {
        SLUICE_ASSERT(has_value(), error_text().c_str());
        return std::get<0>(_v);
    }
    const T& value() const& {
        SLUICE_ASSERT(has_value(), error_text().c_str());
        return std::get<0>(_v);
    }
    T&& value() && {
        SLUICE_ASSERT(has_value(), error_text().c_str());
        return std::get<0>(std::move(_v));
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const sluice::error& error() const {
        SLUICE_ASSERT(!has_value(), "result holds a value");
        return std::get<1>(_v);
    }

private:
    std::string error_text() const { return has_value() ? "" : std::get<1>(_v).describe(); }
    std::variant<T, sluice::error> _v;
};

template <>
class [[nodiscard]] result<void> {
public:
    result() = default;
    result(sluice::error e) : _err(std::move(e)), _failed(true) {}
    template <class E, std::enable_if_t<std::is_error_code_enum_v<E>, int> = 0>
    result(E e, std::string detail = {}) : _err(e, std::move(detail)), _failed(true) {}

    bool has_value() const { return !_failed; }
    explicit operator bool() const { return !_failed; }
    void value() const { SLUICE_ASSERT(!_failed, _err.describe().c_str()); }
    const sluice::error& error() const {
        SLUICE_ASSERT(_failed, "result holds a value");
        return _err;
    }

private:
    sluice::error _err;
    bool _failed = false;
};

inline result<void> ok() { return {}; }

// Declares the std::error_category for a module's errc enum. Use in the module's errc.h:
//   enum class errc { ok = 0, corrupt, ... };
//   SLUICE_DECLARE_ERRC(sluice::engine::errc)
// and define `const char* describe(errc)` plus the category in a .cc with SLUICE_DEFINE_ERRC.
#define SLUICE_DECLARE_ERRC(ns, enum_name)                                    \
    namespace ns {                                                            \
    const std::error_category& enum_name##_category() noexcept;               \
    inline std::error_code make_error_code(enum_name e) noexcept {            \
        return {static_cast<int>(e), enum_name##_category()};                 \
    }                                                                         \
    }                                                                         \
    template <>                                                               \
    struct std::is_error_code_enum<ns::enum_name> : std::true_type {};

#define SLUICE_DEFINE_ERRC(ns, enum_name, name_str, describe_fn)                       \
    namespace ns {                                                                     \
    namespace {                                                                        \
    class enum_name##_category_impl final : public std::error_category {               \
    public:                                                                            \
        const char* name() const noexcept override { return name_str; }                \
        std::string message(int c) const override {                                    \
            return describe_fn(static_cast<enum_name>(c));                             \
        }                                                                              \
    };                                                                                 \
    }                                                                                  \
    const std::error_category& enum_name##_category() noexcept {                       \
        static const enum_name##_category_impl instance;                               \
        return instance;                                                               \
    }                                                                                  \
    }

}  // namespace sluice
