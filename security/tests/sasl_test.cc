#include "security/sasl.h"

#include <gtest/gtest.h>

namespace sluice::security {
namespace {

credential_source users(std::map<std::string, std::string> plain,
                        std::map<std::string, scram_credential> scram = {}) {
    credential_source src;
    src.plain_password = [plain](const std::string& u) -> std::optional<std::string> {
        auto it = plain.find(u);
        if (it == plain.end()) return std::nullopt;
        return it->second;
    };
    src.scram = [scram](const std::string& u, scram_mechanism) -> std::optional<scram_credential> {
        auto it = scram.find(u);
        if (it == scram.end()) return std::nullopt;
        return it->second;
    };
    return src;
}

std::string plain_token(std::string_view authz, std::string_view user, std::string_view pw) {
    std::string t(authz);
    t += '\0';
    t += user;
    t += '\0';
    t += pw;
    return t;
}

TEST(Plain, AcceptsTheConfiguredPassword) {
    auto s = make_sasl_server("PLAIN", users({{"alice", "alice-secret"}}));
    ASSERT_TRUE(s);
    auto r = s->step(plain_token("", "alice", "alice-secret"));
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_TRUE(s->done());
    EXPECT_EQ(s->user(), "alice");
}

TEST(Plain, RefusesWrongPasswordUnknownUserAndForeignAuthzid) {
    for (auto token : {plain_token("", "alice", "wrong"), plain_token("", "mallory", "x"),
                       plain_token("bob", "alice", "alice-secret"), plain_token("", "alice", "")}) {
        auto s = make_sasl_server("PLAIN", users({{"alice", "alice-secret"}}));
        auto r = s->step(token);
        ASSERT_FALSE(r);
        EXPECT_TRUE(r.error().is(errc::auth_failed));
        EXPECT_FALSE(s->done());
        // The reason never carries the password that was tried.
        EXPECT_EQ(r.error().describe().find("alice-secret"), std::string::npos);
    }
}

TEST(Plain, MalformedTokens) {
    for (std::string token : {std::string(), std::string("alice"), std::string("\0alice", 6),
                              plain_token("", "", "pw")}) {
        auto s = make_sasl_server("PLAIN", users({{"alice", "pw"}}));
        auto r = s->step(token);
        ASSERT_FALSE(r);
        EXPECT_TRUE(r.error().is(errc::malformed)) << r.error().describe();
    }
}

TEST(Scram, Rfc7677Sha256TestVector) {
    // RFC 7677 section 3: user "user", password "pencil", the nonces and salt given there.
    auto salt = base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==").value();
    auto cred = make_scram_credential(scram_mechanism::sha256, "pencil", 4096, salt);
    credential_source src = users({}, {{"user", cred}});
    auto s = make_sasl_server("SCRAM-SHA-256", src);
    ASSERT_TRUE(s);
    auto first = s->step("n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    ASSERT_TRUE(first) << first.error().describe();
    // The server nonce is random here; the RFC's exchange is replayed with our nonce through
    // the client, and the client's own derivation is checked against the RFC's proof below.
    scram_client c(scram_mechanism::sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
    c.first_message();
    auto final_msg = c.final_message(*first);
    ASSERT_TRUE(final_msg);
    auto server_final = s->step(*final_msg);
    ASSERT_TRUE(server_final) << server_final.error().describe();
    EXPECT_TRUE(s->done());
    EXPECT_EQ(s->user(), "user");
    EXPECT_TRUE(c.verify_server_final(*server_final));

    // The RFC's own messages through the client side: the exact proof the RFC prints.
    scram_client rfc(scram_mechanism::sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
    EXPECT_EQ(rfc.first_message(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    auto rfc_final = rfc.final_message(
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    ASSERT_TRUE(rfc_final);
    EXPECT_EQ(*rfc_final,
              "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
              "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    EXPECT_TRUE(rfc.verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
}

TEST(Scram, Sha512RoundTripAndWrongPassword) {
    auto cred = make_scram_credential(scram_mechanism::sha512, "s3cret", 4096);
    EXPECT_EQ(cred.salt.size(), 32u);
    EXPECT_EQ(cred.stored_key.size(), 64u);
    for (bool right : {true, false}) {
        auto s = make_sasl_server("SCRAM-SHA-512", users({}, {{"bob", cred}}));
        scram_client c(scram_mechanism::sha512, "bob", right ? "s3cret" : "guess");
        auto first = s->step(c.first_message());
        ASSERT_TRUE(first);
        auto fin = s->step(c.final_message(*first).value());
        EXPECT_EQ(bool(fin), right);
        EXPECT_EQ(s->done(), right);
        if (!right) {
            EXPECT_TRUE(fin.error().is(errc::auth_failed));
        }
    }
}

TEST(Scram, UnknownUserTamperedNonceAndGarbage) {
    auto cred = make_scram_credential(scram_mechanism::sha256, "pw", 4096);
    {
        auto s = make_sasl_server("SCRAM-SHA-256", users({}, {{"bob", cred}}));
        auto r = s->step("n,,n=nobody,r=abc");
        ASSERT_FALSE(r);
        EXPECT_TRUE(r.error().is(errc::auth_failed));
    }
    {
        auto s = make_sasl_server("SCRAM-SHA-256", users({}, {{"bob", cred}}));
        auto first = s->step("n,,n=bob,r=abc");
        ASSERT_TRUE(first);
        auto r = s->step("c=biws,r=abcOTHER,p=" + base64_encode(std::vector<uint8_t>(32, 1)));
        ASSERT_FALSE(r);
        EXPECT_FALSE(s->done());
        // Nothing more is accepted after a failure.
        EXPECT_FALSE(s->step("n,,n=bob,r=abc"));
    }
    for (std::string junk : std::vector<std::string>{"", "x", "n,", "p=tls-unique,,n=bob,r=a", "n,,r=a,n=bob",
                             "n,,n=b=ob,r=a", "n,,n=bob", std::string(5000, ','),
                             std::string("n,,n=bob,r=a,m=ext")}) {
        auto s = make_sasl_server("SCRAM-SHA-256", users({}, {{"bob", cred}}));
        EXPECT_FALSE(s->step(junk)) << junk;
    }
}

TEST(Scram, EscapedUserNames) {
    auto cred = make_scram_credential(scram_mechanism::sha256, "pw", 4096);
    auto s = make_sasl_server("SCRAM-SHA-256", users({}, {{"a,b=c", cred}}));
    scram_client c(scram_mechanism::sha256, "a,b=c", "pw");
    std::string first = c.first_message();
    EXPECT_NE(first.find("n=a=2Cb=3Dc"), std::string::npos);
    auto sf = s->step(first);
    ASSERT_TRUE(sf);
    ASSERT_TRUE(s->step(c.final_message(*sf).value()));
    EXPECT_EQ(s->user(), "a,b=c");
}

TEST(Base64, RoundTripAndRejects) {
    for (size_t n = 0; n < 10; ++n) {
        std::vector<uint8_t> v(n);
        for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 37 + 1);
        EXPECT_EQ(base64_decode(base64_encode(v)).value(), v);
    }
    EXPECT_FALSE(base64_decode("abc"));
    EXPECT_FALSE(base64_decode("ab!d"));
}

TEST(Jaas, PlainLoginModuleUsers) {
    auto j = parse_jaas(
        "org.apache.kafka.common.security.plain.PlainLoginModule required\n"
        "  username=\"admin\" password=\"admin-secret\"\n"
        "  user_admin=\"admin-secret\" user_alice=\"alice secret\";");
    ASSERT_TRUE(j) << j.error().describe();
    EXPECT_EQ(j->login_module, "org.apache.kafka.common.security.plain.PlainLoginModule");
    EXPECT_EQ(j->users.size(), 2u);
    EXPECT_EQ(j->users.at("alice"), "alice secret");
    EXPECT_EQ(j->options.at("username"), "admin");
    EXPECT_FALSE(parse_jaas("Module required user_a=\"x\""));  // no ';'
    EXPECT_FALSE(parse_jaas("Module sometimes;"));
    EXPECT_FALSE(parse_jaas("Module required user_a=\"x;"));
    EXPECT_FALSE(parse_jaas(""));
}

}  // namespace
}  // namespace sluice::security
