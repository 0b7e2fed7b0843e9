#include "config/YamlReader.h"

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

using namespace fleetprobe;

namespace
{

/// The message parseYaml throws for `text`, or "" when it parses.
std::string errorOf(const std::string& text)
{
    try
    {
        parseYaml(text);
    }
    catch (const std::runtime_error& e)
    {
        return e.what();
    }
    return "";
}

bool startsWith(const std::string& s, const std::string& prefix)
{
    return s.rfind(prefix, 0) == 0;
}

} // namespace

BOOST_AUTO_TEST_SUITE(YamlReaderTests)

BOOST_AUTO_TEST_CASE(mappings_keep_file_order_and_sequences_become_arrays)
{
    ConfigValue v = parseYaml("zeta: 1\nalpha:\n  - a\n  - b\nmid: {x: 1, y: [1, 2]}\n");
    BOOST_REQUIRE(v.isObject());
    BOOST_REQUIRE_EQUAL(v.members().size(), 3u);
    BOOST_CHECK_EQUAL(v.members()[0].first, "zeta");
    BOOST_CHECK_EQUAL(v.members()[1].first, "alpha");
    BOOST_CHECK_EQUAL(v.members()[2].first, "mid");
    const ConfigValue* alpha = v.find("alpha");
    BOOST_REQUIRE(alpha && alpha->isArray());
    BOOST_REQUIRE_EQUAL(alpha->items().size(), 2u);
    BOOST_CHECK_EQUAL(alpha->items()[1].asString(), "b");
    const ConfigValue* y = v.find("mid")->find("y");
    BOOST_REQUIRE(y && y->isArray());
    BOOST_CHECK_EQUAL(y->items()[1].asInteger(), 2);
}

BOOST_AUTO_TEST_CASE(plain_scalars_follow_the_core_schema)
{
    ConfigValue v = parseYaml("a: null\nb: ~\nc:\nd: true\ne: False\nf: 42\ng: -7\nh: 0x1F\ni: 0o17\nj: 1.5\n"
                              "k: 2e3\nl: .inf\nm: -.Inf\nn: .nan\no: hello world\np: yes\nq: 012\nr: 0x\n");
    BOOST_CHECK(v.find("a")->isNull());
    BOOST_CHECK(v.find("b")->isNull());
    BOOST_CHECK(v.find("c")->isNull());
    BOOST_CHECK(v.find("d")->isBoolean() && v.find("d")->asBoolean());
    BOOST_CHECK(v.find("e")->isBoolean() && !v.find("e")->asBoolean());
    BOOST_CHECK(v.find("f")->isInteger());
    BOOST_CHECK_EQUAL(v.find("f")->asInteger(), 42);
    BOOST_CHECK_EQUAL(v.find("g")->asInteger(), -7);
    BOOST_CHECK_EQUAL(v.find("h")->asInteger(), 31);
    BOOST_CHECK_EQUAL(v.find("i")->asInteger(), 15);
    BOOST_CHECK(v.find("j")->isNumber() && !v.find("j")->isInteger());
    BOOST_CHECK_EQUAL(v.find("j")->asNumber(), 1.5);
    BOOST_CHECK(!v.find("k")->isInteger());
    BOOST_CHECK_EQUAL(v.find("k")->asNumber(), 2000.0);
    BOOST_CHECK(std::isinf(v.find("l")->asNumber()) && v.find("l")->asNumber() > 0);
    BOOST_CHECK(std::isinf(v.find("m")->asNumber()) && v.find("m")->asNumber() < 0);
    BOOST_CHECK(std::isnan(v.find("n")->asNumber()));
    BOOST_CHECK_EQUAL(v.find("o")->asString(), "hello world");
    // YAML 1.1's yes/no are strings in 1.2; a leading zero is still decimal.
    BOOST_CHECK(v.find("p")->isString());
    BOOST_CHECK_EQUAL(v.find("q")->asInteger(), 12);
    BOOST_CHECK(v.find("r")->isString());
    BOOST_CHECK_EQUAL(v.find("f")->show(), "42");
    BOOST_CHECK_EQUAL(v.find("h")->show(), "0x1F");
}

BOOST_AUTO_TEST_CASE(quoted_scalars_are_always_strings)
{
    ConfigValue v = parseYaml("a: \"true\"\nb: '42'\nc: \"\"\nd: 'null'\ne: !!str 7\n");
    for (const char* key : {"a", "b", "c", "d", "e"})
        BOOST_CHECK_MESSAGE(v.find(key)->isString(), key);
    BOOST_CHECK_EQUAL(v.find("a")->asString(), "true");
    BOOST_CHECK_EQUAL(v.find("b")->asString(), "42");
    BOOST_CHECK_EQUAL(v.find("c")->asString(), "");
    BOOST_CHECK_EQUAL(v.find("e")->asString(), "7");
}

BOOST_AUTO_TEST_CASE(an_empty_text_is_null_and_a_bare_scalar_is_the_document)
{
    BOOST_CHECK(parseYaml("").isNull());
    BOOST_CHECK(parseYaml("# only a comment\n").isNull());
    BOOST_CHECK_EQUAL(parseYaml("just text").asString(), "just text");
}

BOOST_AUTO_TEST_CASE(invalid_yaml_names_line_and_column)
{
    std::string e = errorOf("a: 1\nb: [1, 2\n");
    BOOST_CHECK_MESSAGE(startsWith(e, "line "), e);
    BOOST_CHECK_MESSAGE(e.find(", column ") != std::string::npos, e);
    e = errorOf("a: 1\n  b: 2\n");
    BOOST_CHECK_MESSAGE(startsWith(e, "line 2, column "), e);
}

BOOST_AUTO_TEST_CASE(a_duplicate_key_is_an_error_with_its_position)
{
    std::string e = errorOf("a: 1\nb: 2\na: 3\n");
    BOOST_CHECK_EQUAL(e, "line 3, column 1: duplicate key \"a\"");
    BOOST_CHECK(startsWith(errorOf("x: {k: 1, k: 2}\n"), "line 1, column "));
}

BOOST_AUTO_TEST_CASE(a_second_document_is_an_error)
{
    BOOST_CHECK_MESSAGE(startsWith(errorOf("a: 1\n---\nb: 2\n"), "line "), errorOf("a: 1\n---\nb: 2\n"));
    BOOST_CHECK(parseYaml("---\na: 1\n...\n").isObject());
}

BOOST_AUTO_TEST_CASE(anchors_and_aliases_copy_the_node)
{
    ConfigValue v = parseYaml("base: &b {port: 502, timeout: 1}\none: *b\ntwo: *b\nlist: [&x 5, *x]\n");
    BOOST_CHECK_EQUAL(v.find("one")->find("port")->asInteger(), 502);
    BOOST_CHECK_EQUAL(v.find("two")->find("timeout")->asInteger(), 1);
    BOOST_CHECK_EQUAL(v.find("list")->items()[1].asInteger(), 5);
    BOOST_CHECK(!errorOf("a: *nowhere\n").empty());
}

BOOST_AUTO_TEST_CASE(hostile_alias_expansion_is_bounded)
{
    // "Billion laughs": each level doubles ten times; it must stop with an error, not eat the memory.
    std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (int i = 1; i < 10; ++i)
        text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" +
                std::string("*a" + std::to_string(i - 1) + ", ") + "*a" + std::to_string(i - 1) + ", *a" +
                std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + ", *a" + std::to_string(i - 1) +
                ", *a" + std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + ", *a" +
                std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + ", *a" + std::to_string(i - 1) +
                "]\n";
    std::string e = errorOf(text);
    BOOST_CHECK_MESSAGE(e.find("aliases expand to more than") != std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(hostile_deep_nesting_is_an_error)
{
    for (const char* open : {"[", "{a: "})
    {
        std::string text;
        for (int i = 0; i < 100000; ++i)
            text += open;
        std::string e = errorOf(text);
        BOOST_CHECK_MESSAGE(startsWith(e, "line "), e);
    }
    std::string ok;
    for (int i = 0; i < 100; ++i)
        ok += "[";
    ok += "1";
    for (int i = 0; i < 100; ++i)
        ok += "]";
    BOOST_CHECK(parseYaml(ok).isArray());
}

BOOST_AUTO_TEST_CASE(huge_numbers_saturate_with_integer_overflow)
{
    ConfigValue v = parseYaml("big: 123456789012345678901234567890\nsmall: -123456789012345678901234567890\n"
                              "hex: 0xFFFFFFFFFFFFFFFFFFFF\nfits: 9223372036854775807\n");
    BOOST_CHECK(v.find("big")->isInteger() && v.find("big")->integerOverflow());
    BOOST_CHECK_EQUAL(v.find("big")->asInteger(), std::numeric_limits<long long>::max());
    BOOST_CHECK(v.find("small")->integerOverflow());
    BOOST_CHECK_EQUAL(v.find("small")->asInteger(), std::numeric_limits<long long>::min());
    BOOST_CHECK(v.find("hex")->integerOverflow());
    BOOST_CHECK(!v.find("fits")->integerOverflow());
    BOOST_CHECK_EQUAL(v.find("fits")->asInteger(), std::numeric_limits<long long>::max());
    BOOST_CHECK_EQUAL(v.find("big")->show(), "123456789012345678901234567890");
}

BOOST_AUTO_TEST_CASE(hostile_bytes_never_crash)
{
    const std::string inputs[] = {std::string("a: \0\0\0", 6),
                                  "\xff\xfe\x00",
                                  "- - - - - -",
                                  "? [a]\n: 1\n",
                                  "&a [*a]",
                                  "a: !!int notanumber",
                                  "a: !custom 1",
                                  "%YAML 9.9\n---\na",
                                  "\t\tkey: value",
                                  std::string(100000, '-'),
                                  "{{{{}}}}",
                                  "[1, 2]: x"};
    for (const auto& input : inputs)
    {
        try
        {
            parseYaml(input);
        }
        catch (const std::runtime_error& e)
        {
            BOOST_CHECK_MESSAGE(startsWith(e.what(), "line "), e.what());
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
