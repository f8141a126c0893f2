"""exception.describe: an error's text is never empty."""

from heartbeat import exception


class Quiet(Exception):
    def __str__(self):
        return ''


def _chain(outer, inner):
    try:
        try:
            raise inner
        except Exception as err:
            raise outer from err
    except Exception as err:
        return err


def test_text_of_an_error_with_a_message_is_the_message():
    assert exception.describe(ValueError('bad value')) == 'bad value'


def test_an_empty_error_is_named_by_its_cause_chain():
    err = _chain(Quiet(), TimeoutError('no answer in 3s'))
    assert exception.describe(err) == (
        'Quiet: TimeoutError: no answer in 3s')


def test_a_chain_without_any_text_still_names_every_class():
    err = _chain(Quiet(), Quiet())
    assert exception.describe(err) == (
        'Quiet from Quiet, without further detail')
    assert exception.describe(Quiet()) == 'Quiet, without further detail'
